// The Env seam (DESIGN.md §9): the clocks a test can move, and the SQLite VFS through which a
// test fails the N-th read, write, sync, truncate or open of a real database file.
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <factstr/database/sqlite_connection.hpp>
#include <factstr/env.hpp>
#include <factstr/errors.hpp>
#include <factstr/factstr.hpp>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../support/temp_dir.hpp"

using namespace factstr;
using factstr::testing::TempDir;
namespace fs = std::filesystem;
using std::chrono::microseconds;
using std::chrono::seconds;

namespace {

constexpr int kReadWriteCreate = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;

// A WAL database with synchronous=FULL, as the SQLite engine opens its file.
std::unique_ptr<sqlite::Connection> open_database(const std::string& path, Env& env) {
    auto db =
        std::make_unique<sqlite::Connection>(path, kReadWriteCreate, 1000, sqlite_vfs_name(env));
    db->exec("PRAGMA journal_mode=WAL");
    db->exec("PRAGMA synchronous=FULL");
    db->exec("CREATE TABLE IF NOT EXISTS facts(n INTEGER PRIMARY KEY, payload TEXT NOT NULL)");
    return db;
}

// One transaction of `rows` rows of 1 KiB each (several pages, so several WAL writes).
void insert_rows(sqlite::Connection& db, int rows) {
    db.exec("BEGIN");
    try {
        auto& insert = db.statement("INSERT INTO facts(payload) VALUES (?)");
        const std::string payload(1024, 'x');
        for (int i = 0; i < rows; ++i) {
            insert.bind(1, std::string_view(payload));
            insert.run();
        }
        db.exec("COMMIT");
    } catch (...) {
        if (!sqlite3_get_autocommit(db.handle())) {
            sqlite3_exec(db.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
        }
        throw;
    }
}

// What another process would read: the default VFS, no Env.
struct Checked {
    std::int64_t rows = 0;
    std::string integrity;
};
Checked check_with_default_vfs(const std::string& path) {
    sqlite::Connection db(path, SQLITE_OPEN_READWRITE, 1000);
    Checked checked;
    auto& count = db.statement("SELECT count(*) FROM facts");
    REQUIRE(count.step());
    checked.rows = count.integer(0);
    count.reset();
    auto& integrity = db.statement("PRAGMA integrity_check");
    REQUIRE(integrity.step());
    checked.integrity = std::string(integrity.text(0));
    integrity.reset();
    return checked;
}

// Runs `fn`, which must throw StoreError, and returns SQLite's extended result code on `db`.
template <class Fn>
int store_error_code(sqlite::Connection& db, Fn&& fn) {
    try {
        fn();
    } catch (const StoreError& error) {
        CHECK(error.code() == ErrorCode::storage_failure);
        CHECK_THAT(std::string(error.what()), Catch::Contains(db.path()));
        return sqlite3_extended_errcode(db.handle());
    }
    FAIL("no StoreError was thrown");
    return SQLITE_OK;
}

// An Env that records every file operation it sees.
struct RecordingEnv : Env {
    struct Seen {
        FileOp op;
        std::string path;
        std::uint64_t offset;
        std::size_t bytes;
    };
    std::mutex mutex;
    std::vector<Seen> seen;
    FileFault before_file_op(const FileOperation& operation) override {
        std::lock_guard lock(mutex);
        seen.push_back(
            {operation.op, std::string(operation.path), operation.offset, operation.bytes});
        return FileFault::none;
    }
};

// A file opened straight through the Env's VFS, below SQLite's pager: the fault mapping
// without SQLite's reaction to it.
struct VfsFile {
    sqlite3_vfs* vfs;
    std::vector<std::byte> memory;
    sqlite3_file* file;
    VfsFile(const std::string& vfs_name, const std::string& path)
        : vfs(sqlite3_vfs_find(vfs_name.c_str())) {
        REQUIRE(vfs != nullptr);
        memory.resize(static_cast<std::size_t>(vfs->szOsFile));
        file = reinterpret_cast<sqlite3_file*>(memory.data());
        int out_flags = 0;
        REQUIRE(vfs->xOpen(vfs, path.c_str(), file,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_MAIN_DB,
                           &out_flags) == SQLITE_OK);
    }
    ~VfsFile() { file->pMethods->xClose(file); }
    int write(const std::string& bytes, sqlite3_int64 offset) {
        return file->pMethods->xWrite(file, bytes.data(), static_cast<int>(bytes.size()), offset);
    }
    sqlite3_int64 size() {
        sqlite3_int64 size = -1;
        REQUIRE(file->pMethods->xFileSize(file, &size) == SQLITE_OK);
        return size;
    }
};

}  // namespace

// --- the clocks ---

TEST_CASE("the system env reads the system clocks and opens SQLite without a shim", "[env]") {
    Env& env = Env::system();
    CHECK(&env == &Env::system());
    const auto before = std::chrono::system_clock::now();
    const Timestamp now = env.now();
    const auto after = std::chrono::system_clock::now();
    CHECK(now >= std::chrono::floor<microseconds>(before));
    CHECK(now <= std::chrono::ceil<microseconds>(after));
    const auto steady_before = std::chrono::steady_clock::now();
    const auto monotonic = env.monotonic_now();
    CHECK(monotonic >= steady_before);
    CHECK(monotonic <= std::chrono::steady_clock::now());
    CHECK(env.before_file_op(FileOperation{FileOp::write, "x.db", 0, 4096}) == FileFault::none);
    CHECK(sqlite_vfs_name(env).empty());
}

TEST_CASE("a manual clock stands still until advanced and advance moves both clocks", "[env]") {
    const Timestamp start = std::chrono::sys_days{std::chrono::year{2021} / 6 / 1};
    FaultInjectingEnv env(FaultInjectingEnv::Clocks::manual, start);
    CHECK(env.now() == start);
    CHECK(env.monotonic_now() == std::chrono::steady_clock::time_point{});
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    CHECK(env.now() == start);
    CHECK(env.monotonic_now() == std::chrono::steady_clock::time_point{});

    env.advance(microseconds(1'500'000));
    CHECK(env.now() == start + microseconds(1'500'000));
    CHECK(env.monotonic_now() == std::chrono::steady_clock::time_point{} + microseconds(1'500'000));
}

TEST_CASE("the default manual start is 2000-01-01T00:00:00Z", "[env]") {
    FaultInjectingEnv env(FaultInjectingEnv::Clocks::manual);
    CHECK(env.now().time_since_epoch() == seconds(946'684'800));
}

TEST_CASE("setting the wall clock back leaves the monotonic clock where it was", "[env]") {
    const Timestamp start = std::chrono::sys_days{std::chrono::year{2021} / 6 / 1};
    FaultInjectingEnv env(FaultInjectingEnv::Clocks::manual, start);
    env.advance(seconds(10));
    env.set_wall_clock(start - seconds(3600));
    CHECK(env.now() == start - seconds(3600));
    CHECK(env.monotonic_now() == std::chrono::steady_clock::time_point{} + seconds(10));
    env.advance(seconds(1));
    CHECK(env.now() == start - seconds(3599));
    CHECK(env.monotonic_now() == std::chrono::steady_clock::time_point{} + seconds(11));
}

TEST_CASE("advancing the system clocks of a fault-injecting env adds to the real readings",
          "[env]") {
    FaultInjectingEnv env;  // Clocks::system
    env.advance(seconds(3600));
    const auto wall_before = Env::system().now();
    const auto wall = env.now();
    const auto wall_after = Env::system().now();
    CHECK(wall >= wall_before + seconds(3600));
    CHECK(wall <= wall_after + seconds(3600));
    const auto monotonic_before = std::chrono::steady_clock::now();
    const auto monotonic = env.monotonic_now();
    const auto monotonic_after = std::chrono::steady_clock::now();
    CHECK(monotonic >= monotonic_before + seconds(3600));
    CHECK(monotonic <= monotonic_after + seconds(3600));
}

TEST_CASE("a clock cannot be advanced backwards and a fault cannot be armed for the 0th op",
          "[env]") {
    FaultInjectingEnv env(FaultInjectingEnv::Clocks::manual);
    CHECK_THROWS_AS(env.advance(microseconds(-1)), InvalidInput);
    CHECK(env.monotonic_now() == std::chrono::steady_clock::time_point{});
    CHECK_THROWS_AS(env.fail({.op = FileOp::write, .nth = 0}), InvalidInput);
}

TEST_CASE("SQLite's own clock through the env's VFS reads the env's wall clock", "[env]") {
    TempDir dir{"factstr-env-test"};
    FaultInjectingEnv env(FaultInjectingEnv::Clocks::manual);
    sqlite::Connection db(dir.file("clock.db"), kReadWriteCreate, 1000, sqlite_vfs_name(env));
    auto& unix_time = db.statement("SELECT CAST(strftime('%s','now') AS INTEGER)");
    REQUIRE(unix_time.step());
    CHECK(unix_time.integer(0) == 946'684'800);
    unix_time.reset();
    env.advance(seconds(90));
    REQUIRE(unix_time.step());
    CHECK(unix_time.integer(0) == 946'684'890);
    unix_time.reset();
}

// --- the counting and the arming ---

TEST_CASE("the n-th operation of a kind fails once, and with and_later every one after it",
          "[env]") {
    FaultInjectingEnv env;
    const FileOperation write{FileOp::write, "/d/x.db-wal", 0, 4096};
    const FileOperation sync{FileOp::sync, "/d/x.db-wal", 0, 0};
    env.fail({.op = FileOp::write, .nth = 3, .fault = FileFault::no_space});
    env.fail({.op = FileOp::sync, .nth = 2, .and_later = true});
    std::vector<FileFault> writes, syncs;
    for (int i = 0; i < 5; ++i) {
        writes.push_back(env.before_file_op(write));
        syncs.push_back(env.before_file_op(sync));
    }
    using enum FileFault;
    CHECK(writes == std::vector<FileFault>{none, none, no_space, none, none});
    CHECK(syncs == std::vector<FileFault>{none, io_error, io_error, io_error, io_error});
    CHECK(env.count(FileOp::write) == 5);
    CHECK(env.count(FileOp::sync) == 5);
    CHECK(env.count(FileOp::read) == 0);
    CHECK(env.faults_injected() == 5);

    env.clear_faults();
    CHECK(env.before_file_op(sync) == none);
    CHECK(env.count(FileOp::sync) == 6);
}

TEST_CASE("a fault counts from when it is armed and only on files with its path suffix", "[env]") {
    FaultInjectingEnv env;
    const FileOperation to_db{FileOp::write, "/d/x.db", 0, 4096};
    const FileOperation to_wal{FileOp::write, "/d/x.db-wal", 0, 4096};
    CHECK(env.before_file_op(to_wal) == FileFault::none);  // before arming: not counted
    env.fail({.op = FileOp::write, .nth = 2, .path_suffix = "-wal"});
    CHECK(env.before_file_op(to_db) == FileFault::none);
    CHECK(env.before_file_op(to_wal) == FileFault::none);
    CHECK(env.before_file_op(to_db) == FileFault::none);
    CHECK(env.before_file_op(to_wal) == FileFault::io_error);
    CHECK(env.count(FileOp::write) == 5);
    CHECK(env.faults_injected() == 1);
}

TEST_CASE("the fault armed first decides when two fire for one operation", "[env]") {
    FaultInjectingEnv env;
    env.fail({.op = FileOp::write, .fault = FileFault::short_write});
    env.fail({.op = FileOp::write, .fault = FileFault::no_space});
    CHECK(env.before_file_op({FileOp::write, "x", 0, 10}) == FileFault::short_write);
    CHECK(env.faults_injected() == 1);
}

TEST_CASE("counting and failing are exact when threads do file operations at once",
          "[env][concurrency]") {
    FaultInjectingEnv env;
    constexpr int kThreads = 4, kPerThread = 20000;
    env.fail({.op = FileOp::read, .nth = kThreads * kPerThread / 2});
    std::atomic<int> failed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < kPerThread; ++i) {
                if (env.before_file_op({FileOp::read, "x.db", 0, 4096}) != FileFault::none) {
                    ++failed;
                }
                (void)env.now();
            }
        });
    }
    for (auto& thread : threads)
        thread.join();
    CHECK(env.count(FileOp::read) == kThreads * kPerThread);
    CHECK(failed == 1);
    CHECK(env.faults_injected() == 1);
}

// --- the VFS ---

TEST_CASE("sqlite_vfs_name registers one VFS per env until the env is destroyed", "[env]") {
    std::string first_name, second_name;
    {
        FaultInjectingEnv first, second;
        first_name = sqlite_vfs_name(first);
        second_name = sqlite_vfs_name(second);
        CHECK(first_name != second_name);
        CHECK(sqlite_vfs_name(first) == first_name);
        CHECK(sqlite3_vfs_find(first_name.c_str()) != nullptr);
        CHECK(sqlite3_vfs_find(second_name.c_str()) != nullptr);
        CHECK(sqlite3_vfs_find(nullptr) != sqlite3_vfs_find(first_name.c_str()));
    }
    CHECK(sqlite3_vfs_find(first_name.c_str()) == nullptr);
    CHECK(sqlite3_vfs_find(second_name.c_str()) == nullptr);

    TempDir dir{"factstr-env-test"};
    CHECK_THROWS_WITH(sqlite::Connection(dir.file("x.db"), kReadWriteCreate, 1000, first_name),
                      Catch::Contains("no such vfs"));
}

TEST_CASE("threads asking for the VFS of one env at once get one registration", "[env]") {
    FaultInjectingEnv env;
    std::vector<std::string> names(4);
    std::vector<std::thread> threads;
    for (auto& name : names)
        threads.emplace_back([&] { name = sqlite_vfs_name(env); });
    for (auto& thread : threads)
        thread.join();
    for (const auto& name : names)
        CHECK(name == names[0]);
}

TEST_CASE("a connection's reads, writes and syncs reach the env with the file they touch",
          "[env]") {
    TempDir dir{"factstr-env-test"};
    const std::string path = dir.file("seen.db");
    RecordingEnv env;
    {
        auto db = open_database(path, env);
        insert_rows(*db, 4);
    }
    auto seen = [&](FileOp op, const std::string& file) {
        std::lock_guard lock(env.mutex);
        int n = 0;
        for (const auto& operation : env.seen) {
            if (operation.op == op && operation.path == file) {
                if (op == FileOp::read || op == FileOp::write) CHECK(operation.bytes > 0);
                ++n;
            }
        }
        return n;
    };
    CHECK(seen(FileOp::open, path) == 1);
    CHECK(seen(FileOp::open, path + "-wal") >= 1);
    CHECK(seen(FileOp::write, path + "-wal") > 0);
    CHECK(seen(FileOp::sync, path + "-wal") > 0);
    CHECK(seen(FileOp::read, path) > 0);
    CHECK(seen(FileOp::write, path) > 0);  // the checkpoint when the last connection closes
    CHECK(check_with_default_vfs(path).rows == 4);
}

TEST_CASE("each fault reaches SQLite as the unix VFS reports the failing system call", "[env]") {
    TempDir dir{"factstr-env-test"};
    FaultInjectingEnv env;
    const std::string name = sqlite_vfs_name(env);
    const std::string path = dir.file("raw.db");
    VfsFile file(name, path);
    REQUIRE(file.write(std::string(100, 'a'), 0) == SQLITE_OK);

    SECTION("io_error on a write: SQLITE_IOERR_WRITE, nothing written") {
        env.fail({.op = FileOp::write});
        CHECK(file.write(std::string(100, 'b'), 100) == SQLITE_IOERR_WRITE);
        CHECK(file.size() == 100);
    }
    SECTION("no_space on a write: SQLITE_FULL, nothing written") {
        env.fail({.op = FileOp::write, .fault = FileFault::no_space});
        CHECK(file.write(std::string(100, 'b'), 100) == SQLITE_FULL);
        CHECK(file.size() == 100);
    }
    SECTION("short_write: the first half reaches the file, then SQLITE_FULL") {
        env.fail({.op = FileOp::write, .fault = FileFault::short_write});
        std::string bytes(50, 'b');
        bytes += std::string(50, 'c');
        CHECK(file.write(bytes, 100) == SQLITE_FULL);
        CHECK(file.size() == 150);
        std::string back(50, '\0');
        REQUIRE(file.file->pMethods->xRead(file.file, back.data(), 50, 100) == SQLITE_OK);
        CHECK(back == std::string(50, 'b'));
    }
    SECTION("a read: SQLITE_IOERR_READ") {
        env.fail({.op = FileOp::read});
        std::string back(10, '\0');
        CHECK(file.file->pMethods->xRead(file.file, back.data(), 10, 0) == SQLITE_IOERR_READ);
        CHECK(file.file->pMethods->xRead(file.file, back.data(), 10, 0) == SQLITE_OK);
        CHECK(back == std::string(10, 'a'));
    }
    SECTION("a sync, whatever the fault: SQLITE_IOERR_FSYNC") {
        env.fail({.op = FileOp::sync, .fault = FileFault::no_space});
        CHECK(file.file->pMethods->xSync(file.file, SQLITE_SYNC_NORMAL) == SQLITE_IOERR_FSYNC);
        CHECK(file.file->pMethods->xSync(file.file, SQLITE_SYNC_NORMAL) == SQLITE_OK);
    }
    SECTION("a truncate: SQLITE_IOERR_TRUNCATE, the size unchanged") {
        env.fail({.op = FileOp::truncate});
        CHECK(file.file->pMethods->xTruncate(file.file, 10) == SQLITE_IOERR_TRUNCATE);
        CHECK(file.size() == 100);
        CHECK(file.file->pMethods->xTruncate(file.file, 10) == SQLITE_OK);
        CHECK(file.size() == 10);
    }
    CHECK(env.faults_injected() == 1);
}

TEST_CASE("a failed open makes the connection throw a StoreError naming the file", "[env]") {
    TempDir dir{"factstr-env-test"};
    FaultInjectingEnv env;
    env.fail({.op = FileOp::open});
    const std::string path = dir.file("unopenable.db");
    try {
        sqlite::Connection db(path, kReadWriteCreate, 1000, sqlite_vfs_name(env));
        FAIL("the open did not fail");
    } catch (const StoreError& error) {
        CHECK(error.code() == ErrorCode::storage_failure);
        CHECK_THAT(std::string(error.what()), Catch::Contains(path));
    }
    CHECK(env.faults_injected() == 1);
}

TEST_CASE("a failed write fails the commit with a StoreError and the earlier rows stay readable",
          "[env][sqlite]") {
    TempDir dir{"factstr-env-test"};
    const std::string path = dir.file("write.db");
    FaultInjectingEnv env;
    auto db = open_database(path, env);
    insert_rows(*db, 5);
    const auto writes_before = env.count(FileOp::write);

    env.fail({.op = FileOp::write, .nth = 3});
    CHECK(store_error_code(*db, [&] { insert_rows(*db, 10); }) == SQLITE_IOERR_WRITE);
    CHECK(env.faults_injected() == 1);
    CHECK(env.count(FileOp::write) >= writes_before + 3);

    // The same connection goes on once the disk does.
    insert_rows(*db, 1);
    db.reset();
    const auto checked = check_with_default_vfs(path);
    CHECK(checked.rows == 6);
    CHECK(checked.integrity == "ok");
}

TEST_CASE("no space on the disk fails the commit with SQLITE_FULL", "[env][sqlite]") {
    TempDir dir{"factstr-env-test"};
    const std::string path = dir.file("full.db");
    FaultInjectingEnv env;
    auto db = open_database(path, env);
    insert_rows(*db, 5);
    env.fail({.op = FileOp::write, .fault = FileFault::no_space});
    try {
        insert_rows(*db, 10);
        FAIL("the commit did not fail");
    } catch (const StoreError& error) {
        CHECK(error.code() == ErrorCode::storage_failure);
        CHECK_THAT(std::string(error.what()), Catch::Contains("full"));
        CHECK(sqlite3_extended_errcode(db->handle()) == SQLITE_FULL);
    }
    db.reset();
    const auto checked = check_with_default_vfs(path);
    CHECK(checked.rows == 5);
    CHECK(checked.integrity == "ok");
}

TEST_CASE("a torn write to the WAL loses only the commit it belonged to", "[env][sqlite]") {
    TempDir dir{"factstr-env-test"};
    const std::string path = dir.file("torn.db");
    FaultInjectingEnv env;
    auto db = open_database(path, env);
    insert_rows(*db, 5);
    env.fail(
        {.op = FileOp::write, .nth = 4, .fault = FileFault::short_write, .path_suffix = "-wal"});
    CHECK(store_error_code(*db, [&] { insert_rows(*db, 10); }) == SQLITE_FULL);
    CHECK(env.faults_injected() == 1);
    db.reset();
    const auto checked = check_with_default_vfs(path);
    CHECK(checked.rows == 5);
    CHECK(checked.integrity == "ok");
}

TEST_CASE("every write failing from the n-th on fails each commit until the faults are cleared",
          "[env][sqlite]") {
    TempDir dir{"factstr-env-test"};
    const std::string path = dir.file("sticky.db");
    FaultInjectingEnv env;
    auto db = open_database(path, env);
    insert_rows(*db, 2);
    env.fail({.op = FileOp::write, .and_later = true});
    CHECK(store_error_code(*db, [&] { insert_rows(*db, 1); }) == SQLITE_IOERR_WRITE);
    CHECK(store_error_code(*db, [&] { insert_rows(*db, 1); }) == SQLITE_IOERR_WRITE);
    CHECK(env.faults_injected() >= 2);
    env.clear_faults();
    insert_rows(*db, 1);
    db.reset();
    const auto checked = check_with_default_vfs(path);
    CHECK(checked.rows == 3);
    CHECK(checked.integrity == "ok");
}

TEST_CASE("a failed sync of the WAL fails the commit with SQLITE_IOERR_FSYNC", "[env][sqlite]") {
    TempDir dir{"factstr-env-test"};
    const std::string path = dir.file("sync.db");
    FaultInjectingEnv env;
    auto db = open_database(path, env);
    insert_rows(*db, 5);
    env.fail({.op = FileOp::sync, .path_suffix = "-wal"});
    CHECK(store_error_code(*db, [&] { insert_rows(*db, 10); }) == SQLITE_IOERR_FSYNC);
    CHECK(env.faults_injected() == 1);
    db.reset();
    // The frames reached the file before the sync failed: whether the commit survives is the
    // disk's business; the earlier rows and the file's integrity are ours.
    const auto checked = check_with_default_vfs(path);
    CHECK((checked.rows == 5 || checked.rows == 15));
    CHECK(checked.integrity == "ok");
}

TEST_CASE("a failed read fails the query with SQLITE_IOERR_READ and the next one succeeds",
          "[env][sqlite]") {
    TempDir dir{"factstr-env-test"};
    const std::string path = dir.file("read.db");
    FaultInjectingEnv env;
    {
        auto db = open_database(path, env);
        insert_rows(*db, 20);
    }
    sqlite::Connection db(path, SQLITE_OPEN_READWRITE, 1000, sqlite_vfs_name(env));
    env.fail({.op = FileOp::read});
    CHECK(store_error_code(db, [&] { db.exec("SELECT count(*) FROM facts"); }) ==
          SQLITE_IOERR_READ);
    CHECK(env.faults_injected() == 1);
    auto& count = db.statement("SELECT count(*) FROM facts");
    REQUIRE(count.step());
    CHECK(count.integer(0) == 20);
    count.reset();
}

TEST_CASE("a write fault confined to the main file spares commits and fails the checkpoint",
          "[env][sqlite]") {
    TempDir dir{"factstr-env-test"};
    const std::string path = dir.file("checkpoint.db");
    FaultInjectingEnv env;
    auto db = open_database(path, env);
    insert_rows(*db, 3);
    env.fail({.op = FileOp::write, .path_suffix = "checkpoint.db"});
    insert_rows(*db, 3);  // WAL mode: a commit writes the WAL only
    CHECK(env.faults_injected() == 0);
    CHECK(store_error_code(*db, [&] { db->exec("PRAGMA wal_checkpoint(TRUNCATE)"); }) ==
          SQLITE_IOERR_WRITE);
    CHECK(env.faults_injected() == 1);
    db.reset();
    const auto checked = check_with_default_vfs(path);
    CHECK(checked.rows == 6);
    CHECK(checked.integrity == "ok");
}

// The Env reaches a whole SQLite store through SqliteOptions::env: its clock stamps the
// facts, and a failed write fails the append with a typed error and writes nothing.
TEST_CASE("a SQLite store uses its Env: the clock stamps facts, a write fault fails the append",
          "[env][store]") {
    TempDir dir{"factstr-env-test"};
    const std::string path = dir.file("store.db");
    auto env = std::make_shared<FaultInjectingEnv>(FaultInjectingEnv::Clocks::manual);
    SqliteOptions options;
    options.env = env;
    {
        Store store = sqlite_store(path, options);
        const AppendResult first = store.append({NewEvent{"A", R"({"n":1})"}});
        CHECK(first.first_sequence_number == 1);
        const QueryResult read = store.query(EventQuery{});
        REQUIRE(read.event_records.size() == 1);
        CHECK(json::format_rfc3339(read.event_records[0].occurred_at) ==
              "2000-01-01T00:00:00.000000Z");
        env->advance(std::chrono::seconds(90));
        (void)store.append({NewEvent{"A", R"({"n":2})"}});
        CHECK(json::format_rfc3339(store.query(EventQuery{}).event_records[1].occurred_at) ==
              "2000-01-01T00:01:30.000000Z");

        env->fail({FileOp::write, 1, FileFault::io_error, true});
        CHECK_THROWS_AS(store.append({NewEvent{"A", R"({"n":3})"}}), StoreError);
        env->clear_faults();
        CHECK(store.head() == 2);
        // The next append continues the range with no hole.
        CHECK(store.append({NewEvent{"A", R"({"n":4})"}}).first_sequence_number == 3);
    }
    Store reopened = sqlite_store(path);
    const QueryResult all = reopened.query(EventQuery{});
    REQUIRE(all.event_records.size() == 3);
    CHECK(all.event_records[2].payload == R"({"n":4})");
}

namespace {

// Records the name of every thread started through it and how many are still running.
class ThreadRecordingEnv : public FaultInjectingEnv {
  public:
    std::thread start_thread(std::string_view name, std::function<void()> body) override {
        {
            std::lock_guard lock(mutex);
            names.emplace_back(name);
            ++running;
        }
        return Env::start_thread(name, [this, body = std::move(body)] {
            body();
            std::lock_guard lock(mutex);
            --running;
        });
    }
    std::size_t started(const std::string& name) {
        std::lock_guard lock(mutex);
        return static_cast<std::size_t>(std::count(names.begin(), names.end(), name));
    }
    int still_running() {
        std::lock_guard lock(mutex);
        return running;
    }

    std::mutex mutex;
    std::vector<std::string> names;
    int running = 0;
};

}  // namespace

// Every thread a store and its projection engine start goes through the store's Env, named,
// and none is left running once the engine has stopped and the store has closed.
TEST_CASE("every thread the library starts is started through the store's Env", "[env][store]") {
    TempDir dir{"factstr-env-test"};
    auto env = std::make_shared<ThreadRecordingEnv>();
    SqliteOptions options;
    options.env = env;
    {
        StoreOptions store_options;
        store_options.stream_threads = 3;
        Store store = sqlite_store(dir.file("threads.db"), options, store_options);
        CHECK(&store.env() == env.get());
        CHECK(env->still_running() == 0);  // nothing until something needs a thread

        std::atomic<int> delivered{0};
        Subscription live = store.stream_all(
            [&](const Batch& batch) { delivered += static_cast<int>(batch.size()); });
        (void)store.append({NewEvent{"A", "{}"}});
        const auto deadline = std::chrono::steady_clock::now() + seconds(10);
        while (delivered.load() == 0 && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        projections::Engine engine(store);
        engine.start();
        CHECK(env->started("factstr-stream") == 3);
        CHECK(env->started("factstr-lease") == 1);
        CHECK(env->still_running() == 4);
        engine.stop();
        CHECK(env->still_running() == 3);
        live.unsubscribe();
        store.close();
        CHECK(env->still_running() == 0);
        CHECK(delivered.load() == 1);
    }
    std::lock_guard lock(env->mutex);
    CHECK(env->names.size() == 4);
}
