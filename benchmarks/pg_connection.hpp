// A libpq connection for the benchmark's own SQL: dropping and creating databases, and the
// raw libpq yardsticks (raw_libpq.cpp) and W7's reader of the derived table.
#pragma once

#include <libpq-fe.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace factstr::bench {

// A libpq connection to the bench's server, optionally to another database on it.
class PgConn {
  public:
    PgConn(const std::string& server_url, const std::string& database) {
        const char* keywords[] = {"dbname", database.empty() ? nullptr : "dbname", nullptr};
        const char* values[] = {server_url.c_str(), database.empty() ? nullptr : database.c_str(),
                                nullptr};
        conn_ = PQconnectdbParams(keywords, values, 1);
        if (PQstatus(conn_) != CONNECTION_OK) {
            std::string message = PQerrorMessage(conn_);
            PQfinish(conn_);
            throw std::runtime_error("raw libpq connection failed: " + message);
        }
    }
    ~PgConn() {
        if (conn_) PQfinish(conn_);
    }
    PgConn(const PgConn&) = delete;
    PgConn& operator=(const PgConn&) = delete;
    PgConn(PgConn&& other) noexcept : conn_(std::exchange(other.conn_, nullptr)) {}
    PGconn* get() const { return conn_; }

    void exec(const std::string& sql) { check(PQexec(conn_, sql.c_str()), sql); }
    std::string value(const std::string& sql) {
        PGresult* r = PQexec(conn_, sql.c_str());
        check_keep(r, sql);
        std::string out = PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
        PQclear(r);
        return out;
    }
    void prepare(const char* name, const std::string& sql, int params) {
        check(PQprepare(conn_, name, sql.c_str(), params, nullptr), sql);
    }
    void exec_prepared(const char* name, const std::vector<const char*>& values) {
        check(PQexecPrepared(conn_, name, static_cast<int>(values.size()), values.data(), nullptr,
                             nullptr, 0),
              name);
    }
    void check_keep(PGresult* r, const std::string& what) {
        const auto status = PQresultStatus(r);
        if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return;
        std::string message = PQresultErrorMessage(r);
        PQclear(r);
        throw std::runtime_error("raw libpq: " + what.substr(0, 80) + ": " + message);
    }

  private:
    void check(PGresult* r, const std::string& what) {
        check_keep(r, what);
        PQclear(r);
    }
    PGconn* conn_ = nullptr;
};

}  // namespace factstr::bench
