// SQLite-only behaviour: files that are not ours, schema versions, URL options, several
// processes on one file, and kill -9 at random moments.
#include <sqlite3.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "../support/helpers.hpp"
#include "../support/process.hpp"

using namespace factstr;
using namespace factstr::testing;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        static int counter = 0;
        path = fs::temp_directory_path() / ("factstr-sqlite-test-" + std::to_string(::getpid()) +
                                            "-" + std::to_string(counter++));
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
}

// Runs SQL on a raw connection (the independent checker and the tamperer).
void raw_exec(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    char* error = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    std::string message = error ? error : "";
    sqlite3_free(error);
    sqlite3_close(db);
    INFO(message);
    REQUIRE(rc == SQLITE_OK);
}

std::vector<std::vector<std::int64_t>> raw_rows(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    std::vector<std::vector<std::int64_t>> rows;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        std::vector<std::int64_t> row;
        for (int c = 0; c < sqlite3_column_count(stmt); ++c)
            row.push_back(sqlite3_column_int64(stmt, c));
        rows.push_back(row);
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return rows;
}

template <class Fn>
ErrorCode error_code_of(Fn&& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.code();
    }
    FAIL("expected a factstr::Error");
    return ErrorCode::closed;
}

// Checks the whole file: sequence 1..N without holes, and every batch complete: the facts
// carrying batch_last = B are exactly a consecutive range ending at B.
void check_log_integrity(const std::string& path) {
    auto facts =
        raw_rows(path, "SELECT sequence_number, batch_last FROM facts ORDER BY sequence_number");
    std::map<std::int64_t, std::pair<std::int64_t, std::int64_t>> batches;  // last -> (min, count)
    for (std::size_t i = 0; i < facts.size(); ++i) {
        INFO("fact at index " << i);
        REQUIRE(facts[i][0] == static_cast<std::int64_t>(i + 1));
        REQUIRE(facts[i][1] >= facts[i][0]);
        auto& batch = batches[facts[i][1]];
        if (batch.second == 0) batch.first = facts[i][0];
        ++batch.second;
    }
    for (const auto& [last, range] : batches) {
        INFO("batch ending at " << last);
        REQUIRE(range.first + range.second - 1 == last);
    }
}

}  // namespace

TEST_CASE("a file that is not a SQLite database is refused and left untouched", "[sqlite]") {
    TempDir dir;
    const std::string path = dir.file("notes.txt");
    { std::ofstream(path) << "these are my notes, not a database\n"; }
    const std::string before = read_file(path);
    CHECK(error_code_of([&] { open("sqlite:" + path); }) == ErrorCode::schema_mismatch);
    CHECK(read_file(path) == before);
    CHECK_FALSE(fs::exists(path + "-wal"));
}

TEST_CASE("a SQLite database of another application is refused and left untouched", "[sqlite]") {
    TempDir dir;
    const std::string path = dir.file("other.db");
    raw_exec(path,
             "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); "
             "INSERT INTO customers (name) VALUES ('Ada');");
    const std::string before = read_file(path);
    try {
        open("sqlite:" + path);
        FAIL("expected a refusal");
    } catch (const StoreError& e) {
        CHECK(e.code() == ErrorCode::schema_mismatch);
        CHECK_THAT(e.what(),
                   Catch::Contains("not a factstr store") && Catch::Contains("customers"));
    }
    CHECK(read_file(path) == before);
}

TEST_CASE("a factstr file of a newer schema version is refused", "[sqlite]") {
    TempDir dir;
    const std::string path = dir.file("facts.db");
    { (void)open("sqlite:" + path).append({event("a")}); }
    raw_exec(path, "UPDATE factstr_meta SET value = '2' WHERE key = 'schema_version'");
    try {
        open("sqlite:" + path);
        FAIL("expected a refusal");
    } catch (const StoreError& e) {
        CHECK(e.code() == ErrorCode::schema_mismatch);
        CHECK_THAT(e.what(), Catch::Contains("schema version 2"));
    }
    raw_exec(path, "UPDATE factstr_meta SET value = '1' WHERE key = 'schema_version'");
    CHECK(open("sqlite:" + path).head() == 1);
}

TEST_CASE("a corrupt factstr file gives a corrupt_database error", "[sqlite]") {
    TempDir dir;
    const std::string path = dir.file("facts.db");
    {
        Store store = open("sqlite:" + path);
        for (int i = 0; i < 200; ++i)
            (void)store.append({event("filler", R"({"text":")" + std::string(400, 'x') + R"("})")});
    }
    raw_exec(path, "PRAGMA wal_checkpoint(TRUNCATE)");
    {
        // Overwrite the middle of the file (table pages), keep the header intact.
        std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
        file.seekp(4096 * 3);
        std::string garbage(4096 * 4, '\xA5');
        file.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
    }
    auto code = error_code_of([&] {
        Store store = open("sqlite:" + path);
        (void)store.query({});
    });
    CHECK(code == ErrorCode::corrupt_database);
}

TEST_CASE("sqlite URLs take sync and timeout options and reject unknown ones", "[sqlite]") {
    TempDir dir;
    CHECK(parse_sqlite_url("sqlite:" + dir.file("a.db") + "?sync=normal").sync ==
          SqliteOptions::Sync::normal);
    CHECK(parse_sqlite_url("sqlite:" + dir.file("a.db")).sync == SqliteOptions::Sync::full);
    CHECK(parse_sqlite_url("sqlite:///tmp/x.db").path == "/tmp/x.db");
    CHECK(parse_sqlite_url("sqlite:x.db?busy_timeout_ms=5&poll_ms=2").busy_timeout_ms == 5);
    CHECK(error_code_of([&] { parse_sqlite_url("sqlite:x.db?fast=yes"); }) ==
          ErrorCode::invalid_argument);
    CHECK(error_code_of([&] { parse_sqlite_url("sqlite:x.db?sync=sometimes"); }) ==
          ErrorCode::invalid_argument);
    CHECK(error_code_of([&] { parse_sqlite_url("sqlite:"); }) == ErrorCode::invalid_argument);
    CHECK(error_code_of([&] { open("mysql://localhost/x"); }) == ErrorCode::unsupported_url);
    Store normal = open("sqlite:" + dir.file("n.db") + "?sync=normal");
    CHECK(normal.append({event("a")}).last_sequence_number == 1);
}

TEST_CASE(
    "two processes appending with append_if yield one gap-free log that a serial order explains",
    "[sqlite][multiprocess]") {
    TempDir dir;
    const std::string path = dir.file("shared.db");
    { (void)open("sqlite:" + path); }
    const int rounds = 150;
    std::vector<std::unique_ptr<ChildProcess>> children;
    for (int id = 0; id < 2; ++id)
        children.push_back(std::make_unique<ChildProcess>(std::vector<std::string>{
            FACTSTR_WORKER_PATH, "contend", path, std::to_string(rounds), std::to_string(id)}));
    std::vector<std::string> lines;
    for (auto& child : children) {
        auto out = child->read_lines();
        lines.insert(lines.end(), out.begin(), out.end());
        REQUIRE(child->wait() == 0);
    }
    REQUIRE(lines.size() == 2 * rounds);
    check_log_integrity(path);

    Store store = open("sqlite:" + path);
    auto all = store.query({}).event_records;
    // The account each fact belongs to, by sequence number.
    std::map<SequenceNumber, std::string> account_of;
    for (const auto& r : all) {
        const std::string marker = R"("account":")";
        auto at = r.payload.find(marker) + marker.size();
        account_of[r.sequence_number] = r.payload.substr(at, 4);
    }
    auto version_before = [&](const std::string& account, SequenceNumber first) {
        std::string v = "none";
        for (const auto& [seq, acc] : account_of)
            if (seq < first && acc == account) v = std::to_string(seq);
        return v;
    };
    std::size_t ok = 0;
    for (const auto& line : lines) {
        std::istringstream in(line);
        std::string kind;
        in >> kind;
        if (kind == "ok") {
            SequenceNumber first, last;
            std::string account, expected;
            in >> first >> last >> account >> expected;
            INFO(line);
            CHECK(first == last);
            CHECK(account_of.at(first) == account);
            CHECK(version_before(account, first) == expected);  // the check saw the serial state
            ++ok;
        } else {
            std::string account, expected, actual;
            in >> account >> expected >> actual;
            INFO(line);
            CHECK(expected != actual);
            REQUIRE(actual != "none");
            CHECK(account_of.at(std::stoull(actual)) == account);
        }
    }
    CHECK(ok == all.size());
}

TEST_CASE("a live stream in another process sees every fact once, in order",
          "[sqlite][multiprocess]") {
    TempDir dir;
    const std::string path = dir.file("shared.db");
    Store store = open("sqlite:" + path);
    (void)store.append({event("before")});  // not for the stream: committed before it registers
    const std::size_t total = 300;
    ChildProcess tail({FACTSTR_WORKER_PATH, "tail", path, std::to_string(total)});
    std::string line;
    REQUIRE(tail.read_line(line));
    REQUIRE(line == "ready");
    std::size_t appended = 0;
    std::mt19937 random(42);
    while (appended < total) {
        std::size_t n = std::min<std::size_t>(1 + random() % 7, total - appended);
        std::vector<NewEvent> batch;
        for (std::size_t i = 0; i < n; ++i)
            batch.push_back(event("tick", R"({"n":1})"));
        (void)store.append(std::move(batch));
        appended += n;
    }
    auto lines = tail.read_lines();
    REQUIRE(tail.wait() == 0);
    REQUIRE(lines.size() == total);
    for (std::size_t i = 0; i < total; ++i)
        CHECK(lines[i] == std::to_string(i + 2));
}

TEST_CASE(
    "kill -9 at random moments leaves no partial batch, no hole, and no cursor ahead of its "
    "handler",
    "[sqlite][crash]") {
    TempDir dir;
    const std::string path = dir.file("crash.db");
    const std::string handled = dir.file("handled.log");
    const std::string acked = dir.file("acked.log");
    std::mt19937 random(20261123);
    const int kills = 25;
    for (int round = 0; round < kills; ++round) {
        {
            ChildProcess worker({FACTSTR_WORKER_PATH, "crash", path, handled, acked});
            std::this_thread::sleep_for(std::chrono::milliseconds(30 + random() % 150));
            worker.kill(SIGKILL);
            CHECK(worker.wait() == 128 + SIGKILL);
        }
        INFO("after kill " << round);
        check_log_integrity(path);
        // Every acknowledged append is in the log with its own batch boundary.
        {
            std::ifstream in(acked);
            std::int64_t first, last;
            auto rows = raw_rows(
                path, "SELECT sequence_number, batch_last FROM facts ORDER BY sequence_number");
            std::size_t acknowledged = 0, misplaced = 0;
            while (in >> first >> last) {
                REQUIRE(last <= static_cast<std::int64_t>(rows.size()));
                ++acknowledged;
                if (rows[static_cast<std::size_t>(last - 1)][1] != last ||
                    rows[static_cast<std::size_t>(first - 1)][1] != last)
                    ++misplaced;
            }
            CHECK(acknowledged > 0);
            CHECK(misplaced == 0);
        }
        // The durable cursor never points past a batch the handler finished.
        auto cursor =
            raw_rows(path, "SELECT position FROM durable_streams WHERE name = 'crash-projector'");
        std::set<std::int64_t> handled_ends;
        {
            std::ifstream in(handled);
            std::int64_t end;
            while (in >> end)
                handled_ends.insert(end);
        }
        if (!cursor.empty() && cursor[0][0] > 0) {
            INFO("cursor " << cursor[0][0]);
            CHECK(!handled_ends.empty());
            CHECK(cursor[0][0] <= *handled_ends.rbegin());
        }
    }
    auto facts = raw_rows(path, "SELECT count(*) FROM facts");
    CHECK(facts[0][0] > 0);
}

TEST_CASE("an unknown URL scheme is refused without echoing a password", "[sqlite]") {
    try {
        open("mysql://app:s3cret@db.example:3306/facts");
        FAIL("expected a refusal");
    } catch (const InvalidInput& e) {
        CHECK(e.code() == ErrorCode::unsupported_url);
        CHECK_THAT(e.what(), !Catch::Contains("s3cret") && Catch::Contains("app:***@db.example"));
    }
}
