// The raw SQLite yardsticks: the C API on fresh files in the run's directory (or, for W5,
// the store's own file), the store's journal mode and synchronous setting.
#include <fmt/format.h>
#include <sqlite3.h>

#include <filesystem>
#include <stdexcept>

#include "raw_engines.hpp"

namespace factstr::bench {
namespace {

// A fresh SQLite file for a raw yardstick, with the store's journal and sync settings.
sqlite3* open_raw_sqlite(const Config& config, const std::string& name) {
    const std::string path = config.dir + "/" + name + ".db";
    for (const char* suffix : {"", "-wal", "-shm"})
        std::filesystem::remove(path + suffix);
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);
    sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
    sqlite3_exec(db,
                 config.sync == "full" ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                 nullptr, nullptr, nullptr);
    return db;
}

// Runs `statement` `rows` times in transactions of `per_transaction`, `bind(i)` binding
// row i first; returns rows per second.
template <class Bind>
double run_raw_sqlite(sqlite3* db, sqlite3_stmt* statement, std::size_t rows,
                      std::size_t per_transaction, Bind&& bind) {
    auto start = Clock::now();
    for (std::size_t i = 0; i < rows;) {
        sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
        for (std::size_t j = 0; j < per_transaction && i < rows; ++j, ++i) {
            bind(i);
            sqlite3_step(statement);
            sqlite3_reset(statement);
        }
        sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    }
    const double rate = rows / seconds_since(start);
    sqlite3_finalize(statement);
    sqlite3_close(db);
    return rate;
}

}  // namespace

// The raw engine for the catch-up: one prepared SQLite upsert per fact into a table of
// the derived table's shape, 16384 per transaction (what a hand-written projector that
// does not aggregate a page first would do), same journal and synchronous settings.
double raw_sqlite_upserts(const Config& config, std::size_t rows, std::size_t keys) {
    sqlite3* db = open_raw_sqlite(config, "raw_upserts");
    sqlite3_exec(db,
                 "CREATE TABLE accounts (account_id TEXT PRIMARY KEY, deposits INTEGER, "
                 "balance INTEGER, mean_deposit REAL, mean_deposit_sum REAL, "
                 "mean_deposit_count INTEGER)",
                 nullptr, nullptr, nullptr);
    sqlite3_stmt* upsert = nullptr;
    sqlite3_prepare_v2(
        db,
        "INSERT INTO accounts VALUES (?1, ?2, ?3, ?4, ?4, ?2) ON CONFLICT (account_id) DO "
        "UPDATE SET deposits = deposits + excluded.deposits, balance = balance + "
        "excluded.balance, mean_deposit_sum = mean_deposit_sum + excluded.mean_deposit_sum, "
        "mean_deposit_count = mean_deposit_count + excluded.mean_deposit_count, "
        "mean_deposit = (mean_deposit_sum + excluded.mean_deposit_sum) / "
        "NULLIF(mean_deposit_count + excluded.mean_deposit_count, 0)",
        -1, &upsert, nullptr);
    std::mt19937_64 random(7);
    std::vector<std::string> names;
    for (std::size_t k = 0; k < keys; ++k)
        names.push_back(fmt::format("a{}", k));
    return run_raw_sqlite(db, upsert, rows, 16384, [&](std::size_t) {
        const auto pick = random() % 10;
        const auto& key = names[random() % keys];
        const std::int64_t amount = 1 + static_cast<std::int64_t>(random() % 1000);
        sqlite3_bind_text(upsert, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
        sqlite3_bind_int64(upsert, 2, pick < 6 ? 1 : 0);
        sqlite3_bind_int64(upsert, 3, pick < 6 ? amount : -amount);
        if (pick < 6)
            sqlite3_bind_double(upsert, 4, static_cast<double>(amount));
        else
            sqlite3_bind_null(upsert, 4);
    });
}

// The raw engine: prepared one-row inserts in transactions of `per_transaction` rows,
// same journal and synchronous settings as the store.
double raw_sqlite_inserts(const Config& config, std::size_t rows, std::size_t per_transaction) {
    sqlite3* db = open_raw_sqlite(config, "raw");
    sqlite3_exec(db,
                 "CREATE TABLE facts (sequence_number INTEGER PRIMARY KEY, occurred_at INTEGER, "
                 "event_type TEXT, payload TEXT)",
                 nullptr, nullptr, nullptr);
    sqlite3_stmt* insert = nullptr;
    sqlite3_prepare_v2(db, "INSERT INTO facts VALUES (?1, ?2, ?3, ?4)", -1, &insert, nullptr);
    const std::string body = payloads(1, 1, 1000).front();
    return run_raw_sqlite(db, insert, rows, per_transaction, [&](std::size_t i) {
        sqlite3_bind_int64(insert, 1, static_cast<sqlite3_int64>(i + 1));
        sqlite3_bind_int64(insert, 2, 1);
        sqlite3_bind_text(insert, 3, "deposited", -1, SQLITE_STATIC);
        sqlite3_bind_text(insert, 4, body.data(), static_cast<int>(body.size()), SQLITE_STATIC);
    });
}

// The raw engine reading W5's broad query from the store's file: every fact of type
// 'deposited', in order, copied into memory (sequence number, time, type, payload),
// repeated like W5 does. Facts per second.
double raw_sqlite_type_read(const Config& config, std::size_t size) {
    sqlite3* db = nullptr;
    const std::string path = config.dir + "/w3.db";
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK)
        throw std::runtime_error("raw SQLite: cannot open " + path);
    sqlite3_stmt* statement = nullptr;
    sqlite3_prepare_v2(db,
                       "SELECT f.sequence_number, f.occurred_at, t.name, f.payload"
                       " FROM facts f JOIN event_types t ON t.id = f.type_id"
                       " WHERE f.type_id = (SELECT id FROM event_types WHERE name = ?)"
                       " ORDER BY f.sequence_number",
                       -1, &statement, nullptr);
    std::size_t facts = 0, runs = 0;
    auto start = Clock::now();
    do {
        std::vector<EventRecord> records;
        sqlite3_bind_text(statement, 1, "deposited", -1, SQLITE_STATIC);
        while (sqlite3_step(statement) == SQLITE_ROW) {
            auto text = [&](int column) {
                return std::string(
                    reinterpret_cast<const char*>(sqlite3_column_text(statement, column)),
                    static_cast<std::size_t>(sqlite3_column_bytes(statement, column)));
            };
            records.push_back(EventRecord{
                static_cast<SequenceNumber>(sqlite3_column_int64(statement, 0)),
                Timestamp(std::chrono::microseconds(sqlite3_column_int64(statement, 1))), text(2),
                text(3)});
        }
        sqlite3_reset(statement);
        if (records.size() != size) throw std::runtime_error("raw SQLite: wrong row count");
        facts += records.size();
        ++runs;
    } while (runs < 10 && seconds_since(start) < 1.0);
    const double rate = facts / seconds_since(start);
    sqlite3_finalize(statement);
    sqlite3_close(db);
    return rate;
}

}  // namespace factstr::bench
