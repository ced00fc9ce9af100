// SQLite-only behaviour: files that are not ours, schema versions, URL options, several
// processes on one file, and kill -9 at random moments.
#include <sqlite3.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <factstr/json.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "../support/contend.hpp"
#include "../support/helpers.hpp"
#include "../support/process.hpp"
#include "../support/temp_dir.hpp"

using namespace factstr;
using namespace factstr::testing;
namespace fs = std::filesystem;

namespace {

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
    TempDir dir{"factstr-sqlite-test"};
    const std::string path = dir.file("notes.txt");
    { std::ofstream(path) << "these are my notes, not a database\n"; }
    const std::string before = read_file(path);
    CHECK(error_code_of([&] { open("sqlite:" + path); }) == ErrorCode::schema_mismatch);
    CHECK(read_file(path) == before);
    CHECK_FALSE(fs::exists(path + "-wal"));
}

TEST_CASE("a SQLite database of another application is refused and left untouched", "[sqlite]") {
    TempDir dir{"factstr-sqlite-test"};
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
    TempDir dir{"factstr-sqlite-test"};
    const std::string path = dir.file("facts.db");
    { (void)open("sqlite:" + path).append({event("a")}); }
    raw_exec(path, "UPDATE factstr_meta SET value = '4' WHERE key = 'schema_version'");
    const std::string before = read_file(path);
    try {
        open("sqlite:" + path);
        FAIL("expected a refusal");
    } catch (const StoreError& e) {
        CHECK(e.code() == ErrorCode::schema_mismatch);
        CHECK_THAT(e.what(),
                   Catch::Contains("schema version 4") && Catch::Contains("reads versions 1 to 3"));
    }
    CHECK(read_file(path) == before);
    raw_exec(path, "UPDATE factstr_meta SET value = '3' WHERE key = 'schema_version'");
    CHECK(open("sqlite:" + path).head() == 1);
}

namespace {

// Schema version 1 as factstr-cpp wrote it before payload_postings: payload_keys held one
// row per top-level payload scalar per fact.
constexpr const char* kVersion1Schema = R"sql(
CREATE TABLE factstr_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE event_types (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE facts (
  sequence_number INTEGER PRIMARY KEY,
  occurred_at INTEGER NOT NULL,
  type_id INTEGER NOT NULL,
  payload TEXT NOT NULL,
  batch_last INTEGER NOT NULL
);
CREATE INDEX facts_by_type ON facts (type_id, sequence_number);
CREATE TABLE payload_keys (
  key_hash INTEGER NOT NULL,
  sequence_number INTEGER NOT NULL,
  PRIMARY KEY (key_hash, sequence_number)
) WITHOUT ROWID;
CREATE TABLE index_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  keys_indexed_through INTEGER NOT NULL
);
INSERT INTO index_state (id, keys_indexed_through) VALUES (1, 0);
CREATE TABLE durable_streams (
  name TEXT PRIMARY KEY,
  position INTEGER NOT NULL,
  query_json TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO factstr_meta (key, value) VALUES ('format', 'factstr'), ('schema_version', '1');
)sql";

// An event type's key in payload_postings, as SQL text.
std::string type_key(const std::string& name) {
    return std::to_string(static_cast<std::int64_t>(json::type_index_key(name)));
}

// How many facts payload_postings lists under `key_sql` (0 for none).
std::int64_t posting_entries(const std::string& path, const std::string& key_sql) {
    return raw_rows(path,
                    "SELECT coalesce(sum(entries), 0) FROM payload_postings"
                    " WHERE key_hash = " +
                        key_sql)[0][0];
}

// A converted file: schema version 3, and none of the tables or indexes `gone` (SQL list).
void check_converted(const std::string& path, const std::string& gone) {
    CHECK(raw_rows(path, "SELECT value = '3' FROM factstr_meta WHERE key = 'schema_version'") ==
          std::vector<std::vector<std::int64_t>>{{1}});
    INFO("gone: " << gone);
    CHECK(raw_rows(path, "SELECT count(*) FROM sqlite_schema WHERE name IN (" + gone + ")") ==
          std::vector<std::vector<std::int64_t>>{{0}});
}

std::string account_payload(int account, int i) {
    return R"({"account":"a)" + std::to_string(account) + R"(","currency":"EUR","i":)" +
           std::to_string(i) + (i % 997 == 0 ? R"(,"rare":true})" : "}");
}

// The sequence numbers of `store`'s facts matching `query` read after each of several
// cursors, against the ascending `expected`, with the version the query reports.
void check_reads(const Store& store, EventQuery query, const Seqs& expected) {
    const SequenceNumber head = store.head();
    for (SequenceNumber cursor : {SequenceNumber{0}, SequenceNumber{1}, head / 3, head / 2,
                                  head - std::min<SequenceNumber>(head, 5), head}) {
        query.min_sequence_number = cursor;
        Seqs want;
        for (SequenceNumber s : expected)
            if (s > cursor) want.push_back(s);
        INFO("query " << to_json(query));
        QueryResult result = store.query(query);
        CHECK(sequence_numbers(result.event_records) == want);
        if (expected.empty())
            CHECK(!result.current_context_version);
        else
            CHECK(result.current_context_version == expected.back());
    }
}

}  // namespace

TEST_CASE("a version 1 file is converted on first open and reads the same", "[sqlite]") {
    TempDir dir{"factstr-sqlite-test"};
    const std::string path = dir.file("v1.db");
    // A version 1 file: 3000 facts over 7 accounts, the first 2000 in payload_keys (folded),
    // the rest after keys_indexed_through (the tail every process rebuilds).
    std::string sql = kVersion1Schema;
    sql += "INSERT INTO event_types (id, name) VALUES (1, 'deposited');";
    std::map<int, Seqs> by_account;
    Seqs rare;
    for (int i = 1; i <= 3000; ++i) {
        const int account = i % 7;
        const std::string payload = account_payload(account, i);
        by_account[account].push_back(static_cast<SequenceNumber>(i));
        if (i % 997 == 0) rare.push_back(static_cast<SequenceNumber>(i));
        sql += "INSERT INTO facts VALUES (" + std::to_string(i) + ", 1764000000000000, 1, '" +
               payload + "', " + std::to_string(i) + ");";
        if (i <= 2000)
            for (std::uint64_t key : json::index_keys_of(payload))
                sql += "INSERT INTO payload_keys VALUES (" +
                       std::to_string(static_cast<std::int64_t>(key)) + ", " + std::to_string(i) +
                       ");";
    }
    sql += "UPDATE index_state SET keys_indexed_through = 2000;";
    raw_exec(path, "BEGIN;" + sql + "COMMIT;");

    Store store = open("sqlite:" + path);
    check_converted(path, "'payload_keys', 'facts_by_type', 'index_state'");
    // Every (key, fact) pair of payload_keys is in a posting row: 2000 facts x 3 or 4 keys;
    // and every fact up to keys_indexed_through under its type's key.
    CHECK(raw_rows(path, "SELECT sum(entries) FROM payload_postings WHERE key_hash != " +
                             type_key("deposited")) ==
          std::vector<std::vector<std::int64_t>>{{2000 * 3 + 2}});
    CHECK(posting_entries(path, type_key("deposited")) == 2000);
    for (const auto& [account, expected] : by_account)
        check_reads(store, account_query("a" + std::to_string(account)), expected);
    check_reads(store, query_of({predicates({R"({"rare":true})"})}), rare);
    Seqs all(3000);
    std::iota(all.begin(), all.end(), SequenceNumber{1});
    check_reads(store, query_of({types({"deposited"})}), all);
    // Appends and folds continue on the converted file.
    (void)store.append({event("deposited", account_payload(3, 3001))});
    by_account[3].push_back(3001);
    check_reads(store, account_query("a3"), by_account[3]);
}

TEST_CASE("a fact whose two fields share a key hash is listed once in the key index", "[sqlite]") {
    TempDir dir{"factstr-sqlite-test"};
    const std::string path = dir.file("collide.db");
    // Key and value are hashed with a NUL between them: "a" = "b\u0000sc" and "a\u0000sb" =
    // "c" give the same bytes. Folds every fact, so that posting rows hold them.
    Store store = open("sqlite:" + path + "?index_batch=1");
    const std::string payload = R"({"a":"b\u0000sc","a\u0000sb":"c"})";
    for (int i = 0; i < 1200; ++i)
        (void)store.append({event("t", payload)});
    const auto key = static_cast<std::int64_t>(json::index_keys_of(payload).at(0));
    REQUIRE(json::index_keys_of(payload).at(1) == static_cast<std::uint64_t>(key));
    const auto rows = raw_rows(path, "SELECT sum(entries) FROM payload_postings WHERE key_hash = " +
                                         std::to_string(key))[0];
    const auto indexed = raw_rows(path, "SELECT keys_indexed_through FROM key_index_state")[0][0];
    CHECK(indexed >= 1199);
    CHECK(rows[0] == indexed);
    CHECK(store.query(query_of({predicates({R"({"a":"b\u0000sc"})"})})).event_records.size() ==
          1200);
    CHECK(store.query(query_of({predicates({R"({"a\u0000sb":"c"})"})})).event_records.size() ==
          1200);
}

TEST_CASE("the payload key index answers across folds, full posting rows and the tail",
          "[sqlite]") {
    TempDir dir{"factstr-sqlite-test"};
    const std::string path = dir.file("folded.db");
    // Folds every 1000 facts: 12 folds, a dense key ("currency", every fact) whose posting
    // rows fill up and roll over, sparse keys (50 accounts), a rare one, and a tail of 345.
    Store store = open("sqlite:" + path + "?index_batch=1000");
    std::map<int, Seqs> by_account;
    Seqs all, rare, withdrawn_a7;
    std::mt19937 random(7);
    int i = 0;
    while (i < 12345) {
        std::vector<NewEvent> batch;
        const int n = std::min(1 + static_cast<int>(random() % 40), 12345 - i);
        for (int j = 0; j < n; ++j) {
            ++i;
            const int account = static_cast<int>(random() % 50);
            const std::string type = i % 5 == 0 ? "withdrawn" : "deposited";
            batch.push_back(event(type, account_payload(account, i)));
            by_account[account].push_back(static_cast<SequenceNumber>(i));
            all.push_back(static_cast<SequenceNumber>(i));
            if (i % 997 == 0) rare.push_back(static_cast<SequenceNumber>(i));
            if (account == 7 && type == "withdrawn")
                withdrawn_a7.push_back(static_cast<SequenceNumber>(i));
        }
        (void)store.append(std::move(batch));
    }
    const auto indexed = raw_rows(path, "SELECT keys_indexed_through FROM key_index_state")[0][0];
    CHECK(indexed >= 12000);
    CHECK(indexed < 12345);
    // Every (key, fact) pair up to keys_indexed_through is in a posting row, and every fact
    // under its type's key.
    const auto rare_indexed = std::count_if(rare.begin(), rare.end(), [&](SequenceNumber s) {
        return static_cast<std::int64_t>(s) <= indexed;
    });
    CHECK(raw_rows(path, "SELECT sum(entries) FROM payload_postings")[0][0] ==
          indexed * 4 + rare_indexed);
    CHECK(posting_entries(path, type_key("withdrawn")) == indexed / 5);
    CHECK(raw_rows(path, "SELECT max(length(sequences)) <= 960 FROM payload_postings")[0][0] == 1);
    auto rows_of = [&](const std::string& predicate) {
        const auto key = static_cast<std::int64_t>(json::index_keys_of(predicate).at(0));
        return raw_rows(path,
                        "SELECT count(*), sum(entries) FROM payload_postings WHERE key_hash = " +
                            std::to_string(key))[0];
    };
    // The dense key: one byte per fact, so full rows of 960 entries, rolled over.
    const auto dense = rows_of(R"({"currency":"EUR"})");
    CHECK(dense[1] == indexed);
    CHECK(dense[0] >= indexed / 960);
    CHECK(dense[0] <= indexed / 950 + 1);
    // A sparse key: its facts of all 12 folds in the one row each fold extended.
    const auto sparse = rows_of(R"({"account":"a7"})");
    CHECK(sparse[0] == 1);
    CHECK(sparse[1] > 150);

    for (int account : {0, 7, 49})
        check_reads(store, account_query("a" + std::to_string(account)), by_account[account]);
    check_reads(store, query_of({predicates({R"({"currency":"EUR"})"})}), all);
    check_reads(store, query_of({predicates({R"({"rare":true})"})}), rare);
    check_reads(store,
                query_of({EventFilter{std::vector<std::string>{"withdrawn"},
                                      std::vector<std::string>{R"({"account":"a7"})"}}}),
                withdrawn_a7);
    check_reads(store, query_of({predicates({R"({"account":"a50"})"})}), Seqs{});
    // By event type: the sparse one (a fifth of the facts, read by its posting list), the
    // dense one (read by a scan), both, and one that does not exist.
    Seqs withdrawn, deposited;
    for (SequenceNumber s : all)
        (s % 5 == 0 ? withdrawn : deposited).push_back(s);
    check_reads(store, query_of({types({"withdrawn"})}), withdrawn);
    check_reads(store, query_of({types({"deposited"})}), deposited);
    check_reads(store, query_of({types({"deposited", "withdrawn"})}), all);
    check_reads(store, query_of({types({"withdrawn"}), types({"deposited"})}), all);
    check_reads(store, query_of({types({"refunded"})}), Seqs{});

    // A second Store object (its own tail, built from the file) reads the same.
    Store other = open("sqlite:" + path + "?index_batch=1000");
    check_reads(other, account_query("a7"), by_account[7]);

    // append_if sees the newest matching fact wherever it is: folded (a rare key), in the tail.
    auto rare_query = query_of({predicates({R"({"rare":true})"})});
    auto stale = other.append_if({event("deposited", R"({"rare":true})")}, rare_query,
                                 rare[rare.size() - 2]);
    REQUIRE(stale.conflict());
    CHECK(stale.conflict()->actual_context_version == rare.back());
    auto fresh = other.append_if({event("deposited", R"({"rare":true})")}, rare_query, rare.back());
    REQUIRE(fresh.append_result());
    auto tail_query = account_query("a7");
    auto conflict = store.append_if({event("deposited", account_payload(7, 0))}, tail_query,
                                    by_account[7][by_account[7].size() - 2]);
    REQUIRE(conflict.conflict());
    CHECK(conflict.conflict()->actual_context_version == by_account[7].back());
}

TEST_CASE("a version 2 file is converted on first open: its type index becomes posting lists",
          "[sqlite]") {
    TempDir dir{"factstr-sqlite-test"};
    const std::string path = dir.file("v2.db");
    // A version 2 file is a version 3 file without the event types' posting rows and with the
    // facts_by_type index: made so from one this build wrote (a fold every 500 facts, a tail).
    const std::vector<std::string> names = {"opened", "deposited", "withdrawn", "closed"};
    std::map<std::string, Seqs> by_type;
    Seqs all, closed_a3;
    {
        Store writer = open("sqlite:" + path + "?index_batch=500");
        int i = 0;
        while (i < 2345) {
            std::vector<NewEvent> batch;
            for (int j = 0; j < 10 && i < 2345; ++j) {
                ++i;
                // Runs of one type, and a rare one.
                const std::string type = i % 101 == 0 ? "closed" : names[(i / 7) % 3];
                batch.push_back(event(type, account_payload(i % 7, i)));
                by_type[type].push_back(static_cast<SequenceNumber>(i));
                all.push_back(static_cast<SequenceNumber>(i));
                if (type == "closed" && i % 7 == 3) closed_a3.push_back(i);
            }
            (void)writer.append(std::move(batch));
        }
    }
    const auto indexed = raw_rows(path, "SELECT keys_indexed_through FROM key_index_state")[0][0];
    REQUIRE(indexed >= 2000);
    REQUIRE(indexed < 2345);
    std::string type_keys;
    for (const std::string& name : names)
        type_keys += (type_keys.empty() ? "" : ", ") + type_key(name);
    raw_exec(path,
             "BEGIN; DELETE FROM payload_postings WHERE key_hash IN (" + type_keys +
                 "); CREATE INDEX facts_by_type ON facts (type_id, sequence_number);"
                 " ALTER TABLE key_index_state RENAME TO index_state;"
                 " UPDATE factstr_meta SET value = '2' WHERE key = 'schema_version'; COMMIT;");
    REQUIRE(posting_entries(path, type_key("deposited")) == 0);

    Store store = open("sqlite:" + path + "?index_batch=500");
    // The type index is gone, and index_state is renamed: a process of an older build that
    // still has the file open fails at its next read or write instead of folding facts
    // without their types.
    check_converted(path, "'facts_by_type', 'index_state'");
    // Each type's facts up to keys_indexed_through are in its posting rows.
    for (const std::string& name : names) {
        INFO("type " << name);
        const auto folded = std::count_if(
            by_type[name].begin(), by_type[name].end(),
            [&](SequenceNumber s) { return static_cast<std::int64_t>(s) <= indexed; });
        CHECK(posting_entries(path, type_key(name)) == folded);
        check_reads(store, query_of({types({name})}), by_type[name]);
    }
    check_reads(store, query_of({types({"opened", "deposited", "withdrawn", "closed"})}), all);
    Seqs opened_or_closed = by_type["opened"];
    opened_or_closed.insert(opened_or_closed.end(), by_type["closed"].begin(),
                            by_type["closed"].end());
    std::sort(opened_or_closed.begin(), opened_or_closed.end());
    check_reads(store, query_of({types({"closed"}), types({"opened"})}), opened_or_closed);
    check_reads(store,
                query_of({EventFilter{std::vector<std::string>{"closed"},
                                      std::vector<std::string>{R"({"account":"a3"})"}}}),
                closed_a3);
    // Appends and folds continue on the converted file, and a new type is indexed as well.
    for (int k = 0; k < 600; ++k) {
        const auto seq =
            store.append({event("reopened", account_payload(1, k))}).last_sequence_number;
        by_type["reopened"].push_back(seq);
    }
    check_reads(store, query_of({types({"reopened"})}), by_type["reopened"]);
    check_reads(store, query_of({types({"closed"})}), by_type["closed"]);
    CHECK(posting_entries(path, type_key("reopened")) > 0);
}

TEST_CASE("append_if finds a type's newest match behind many candidates that do not match",
          "[sqlite]") {
    // A context of event type + a predicate without an indexable key (an array) is read by
    // the type's key, newest first: the match sits behind 300 newer candidates of its type,
    // in the tail (no fold yet) and in posting rows (folded every 100 facts).
    for (const char* options : {"", "?index_batch=100"}) {
        INFO("options '" << options << "'");
        TempDir dir{"factstr-sqlite-test"};
        Store store = open("sqlite:" + dir.file("types.db") + options);
        (void)store.append({event("opened", R"({"tags":["x"]})")});
        const SequenceNumber match =
            store.append({event("tagged", R"({"tags":["x","z"]})")}).last_sequence_number;
        for (int i = 0; i < 300; ++i)
            (void)store.append({event("tagged", R"({"tags":["y"]})")});
        const auto context = query_of({EventFilter{std::vector<std::string>{"tagged"},
                                                   std::vector<std::string>{R"({"tags":["x"]})"}}});
        auto stale = store.append_if({event("tagged", R"({"tags":["x"]})")}, context, match - 1);
        REQUIRE(stale.conflict());
        CHECK(stale.conflict()->actual_context_version == match);
        auto fresh = store.append_if({event("tagged", R"({"tags":["x"]})")}, context, match);
        REQUIRE(fresh.append_result());
        CHECK(fresh.append_result()->first_sequence_number == 303);
        QueryResult after = store.query([&] {
            EventQuery q = context;
            q.min_sequence_number = 303;
            return q;
        }());
        CHECK(after.event_records.empty());
        CHECK(after.current_context_version == SequenceNumber{303});
    }
}

TEST_CASE("a corrupt factstr file gives a corrupt_database error", "[sqlite]") {
    TempDir dir{"factstr-sqlite-test"};
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
    TempDir dir{"factstr-sqlite-test"};
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
    TempDir dir{"factstr-sqlite-test"};
    const std::string path = dir.file("shared.db");
    { (void)open("sqlite:" + path); }
    const int rounds = 150;
    std::vector<std::unique_ptr<ChildProcess>> children;
    for (int id = 0; id < 2; ++id)
        children.push_back(std::make_unique<ChildProcess>(
            std::vector<std::string>{FACTSTR_WORKER_PATH, "contend", path + "?index_batch=16",
                                     std::to_string(rounds), std::to_string(id)}));
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
    TempDir dir{"factstr-sqlite-test"};
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
    TempDir dir{"factstr-sqlite-test"};
    const std::string path = dir.file("crash.db");
    const std::string handled = dir.file("handled.log");
    const std::string acked = dir.file("acked.log");
    std::mt19937 random(20261123);
    const int kills = 25;
    for (int round = 0; round < kills; ++round) {
        {
            // Folds every 64 facts, so that kills also land inside folds.
            ChildProcess worker(
                {FACTSTR_WORKER_PATH, "crash", path + "?index_batch=64", handled, acked});
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
    // The key index, folded and killed mid-fold, still finds exactly each account's facts.
    CHECK(raw_rows(path, "SELECT keys_indexed_through > 0 FROM key_index_state")[0][0] == 1);
    Store store = open("sqlite:" + path);
    for (int account = 0; account < 5; ++account) {
        const std::string name = "c" + std::to_string(account);
        Seqs expected;
        for (const auto& row :
             raw_rows(path,
                      "SELECT sequence_number FROM facts WHERE json_extract(payload, "
                      "'$.account') = '" +
                          name + "' ORDER BY sequence_number"))
            expected.push_back(static_cast<SequenceNumber>(row[0]));
        INFO("account " << name);
        CHECK(sequence_numbers(store.query(account_query(name)).event_records) == expected);
    }
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
