#include "factstr/database/sqlite_connection.hpp"

#include <algorithm>
#include <thread>

namespace factstr::sqlite {

void throw_sqlite(sqlite3* db, int rc, std::string_view doing, const std::string& path) {
    std::string message = "sqlite:" + path + ": " + std::string(doing) + ": " +
                          (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    switch (rc & 0xff) {
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
            throw StoreError(ErrorCode::corrupt_database,
                             message + " (the file is corrupt or not a SQLite database)");
        default:
            throw StoreError(ErrorCode::storage_failure, message);
    }
}

Connection::Connection(const std::string& path, int flags, int busy_timeout_ms,
                       const std::string& vfs_name)
    : path_(path) {
    int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX,
                             vfs_name.empty() ? nullptr : vfs_name.c_str());
    if (rc != SQLITE_OK) {
        std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
        sqlite3_close_v2(db_);
        db_ = nullptr;
        throw StoreError(ErrorCode::storage_failure,
                         "sqlite:" + path + ": cannot open the database: " + message);
    }
    sqlite3_extended_result_codes(db_, 1);
    busy_timeout_ = std::chrono::milliseconds(busy_timeout_ms);
    sqlite3_busy_handler(db_, &Connection::on_busy, this);
}

// SQLite's own busy timeout sleeps in steps that grow to 100 ms, so a writer waiting behind a
// short transaction of another connection can sleep far longer than the lock is held (a
// projector's commit behind single-fact appends waited up to half a second). This handler
// polls after 20 µs, doubling up to 1 ms, until the timeout.
int Connection::on_busy(void* self, int attempts) {
    auto& connection = *static_cast<Connection*>(self);
    const auto now = std::chrono::steady_clock::now();
    if (attempts == 0) connection.busy_since_ = now;
    if (now - connection.busy_since_ >= connection.busy_timeout_) return 0;
    const auto delay = std::chrono::microseconds(20) * (1 << std::min(attempts, 6));
    std::this_thread::sleep_for(
        std::min<std::chrono::microseconds>(delay, std::chrono::milliseconds(1)));
    return 1;
}

Connection::~Connection() {
    statements_.clear();
    sqlite3_close_v2(db_);
}

void Connection::exec(const char* sql) {
    char* error = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &error);
    if (rc != SQLITE_OK) {
        sqlite3_free(error);
        throw_sqlite(db_, rc, sql, path_);
    }
}

Statement& Connection::statement(const char* sql) {
    auto it = statements_.find(sql);
    if (it != statements_.end()) return it->second;
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) throw_sqlite(db_, rc, sql, path_);
    return statements_.emplace(sql, Statement(stmt, db_, &path_)).first->second;
}

}  // namespace factstr::sqlite
