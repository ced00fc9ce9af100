// A SQLite connection with its prepared statements, and the error mapping every SQLite call
// goes through. Used by one thread at a time.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "factstr/errors.hpp"

namespace factstr::sqlite {

[[noreturn]] void throw_sqlite(sqlite3* db, int rc, std::string_view doing,
                               const std::string& path);

class Statement {
  public:
    Statement() = default;
    Statement(sqlite3_stmt* stmt, sqlite3* db, const std::string* path)
        : stmt_(stmt), db_(db), path_(path) {}
    Statement(Statement&& other) noexcept { *this = std::move(other); }
    Statement& operator=(Statement&& other) noexcept {
        std::swap(stmt_, other.stmt_);
        db_ = other.db_;
        path_ = other.path_;
        return *this;
    }
    ~Statement() { sqlite3_finalize(stmt_); }

    Statement& bind(int index, std::int64_t value) {
        check(sqlite3_bind_int64(stmt_, index, value), "binding");
        return *this;
    }
    Statement& bind(int index, std::string_view text) {
        check(sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()),
                                SQLITE_STATIC),
              "binding");
        return *this;
    }
    Statement& bind_blob(int index, std::string_view bytes) {
        check(sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()),
                                SQLITE_STATIC),
              "binding");
        return *this;
    }
    Statement& bind(int index, double value) {
        check(sqlite3_bind_double(stmt_, index, value), "binding");
        return *this;
    }
    Statement& bind_null(int index) {
        check(sqlite3_bind_null(stmt_, index), "binding");
        return *this;
    }
    // Steps once: true when a row is available.
    bool step() {
        int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        sqlite3_reset(stmt_);
        throw_sqlite(db_, rc, sqlite3_sql(stmt_), *path_);
    }
    void run() {
        while (step()) {
        }
        reset();
    }
    void reset() {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }
    std::int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
    bool is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
    double real(int column) const { return sqlite3_column_double(stmt_, column); }
    std::string_view text(int column) const {
        auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
        return {data ? data : "", static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column))};
    }

    std::string_view blob(int column) const {
        auto* data = static_cast<const char*>(sqlite3_column_blob(stmt_, column));
        return {data ? data : "", static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column))};
    }

  private:
    void check(int rc, std::string_view doing) {
        if (rc != SQLITE_OK) throw_sqlite(db_, rc, doing, *path_);
    }
    sqlite3_stmt* stmt_ = nullptr;
    sqlite3* db_ = nullptr;
    const std::string* path_ = nullptr;
};

// Resets a statement when the scope ends, however it ends.
class Resetting {
  public:
    explicit Resetting(Statement& statement) : statement_(statement) {}
    ~Resetting() { statement_.reset(); }
    Statement* operator->() { return &statement_; }
    Statement& operator*() { return statement_; }

  private:
    Statement& statement_;
};

class Connection {
  public:
    // Opens `path` with sqlite3_open_v2 `flags` (SQLITE_OPEN_NOMUTEX is added). `vfs_name` is
    // the SQLite VFS to open it through, e.g. factstr::sqlite_vfs_name(env); empty: SQLite's
    // default VFS. Throws StoreError(storage_failure) when the file cannot be opened.
    Connection(const std::string& path, int flags, int busy_timeout_ms,
               const std::string& vfs_name = {});
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    void exec(const char* sql);
    // The statement for `sql`, prepared once per connection and reused.
    Statement& statement(const char* sql);
    sqlite3* handle() { return db_; }
    const std::string& path() const { return path_; }

  private:
    static int on_busy(void* self, int attempts);

    std::string path_;
    sqlite3* db_ = nullptr;
    std::chrono::milliseconds busy_timeout_{0};
    std::chrono::steady_clock::time_point busy_since_{};
    std::map<const char*, Statement> statements_;
};

}  // namespace factstr::sqlite
