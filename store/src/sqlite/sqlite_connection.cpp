#include "sqlite_connection.hpp"

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

Connection::Connection(const std::string& path, int flags, int busy_timeout_ms) : path_(path) {
    int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
        std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
        sqlite3_close_v2(db_);
        db_ = nullptr;
        throw StoreError(ErrorCode::storage_failure,
                         "sqlite:" + path + ": cannot open the database: " + message);
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, busy_timeout_ms);
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
