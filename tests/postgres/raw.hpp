// A plain libpq connection for checks and sabotage from outside the store, shared by the
// PostgreSQL test programs (include after catch.hpp).
#pragma once

#include <libpq-fe.h>

#include <string>
#include <vector>

#include "../support/postgres_env.hpp"

namespace factstr::testing {

// The server URL with the database replaced, as a libpq key=value string.
inline std::string url_of(const std::string& database) {
    PQconninfoOption* options = PQconninfoParse(postgres_server_url().c_str(), nullptr);
    REQUIRE(options);
    std::string out;
    for (PQconninfoOption* o = options; o->keyword; ++o) {
        if (!o->val || std::string(o->keyword) == "dbname") continue;
        out += std::string(o->keyword) + "='" + o->val + "' ";
    }
    PQconninfoFree(options);
    return out + "dbname=" + database;
}

class Raw {
  public:
    // Connects to `database` on the test server (empty: the database of the server URL).
    explicit Raw(const std::string& database = "") {
        conn_ = database.empty() ? PQconnectdb(postgres_server_url().c_str())
                                 : PQconnectdb(url_of(database).c_str());
        INFO(PQerrorMessage(conn_));
        REQUIRE(PQstatus(conn_) == CONNECTION_OK);
    }
    ~Raw() { PQfinish(conn_); }
    Raw(const Raw&) = delete;
    Raw& operator=(const Raw&) = delete;

    // Runs `sql` and returns the first column of every row.
    std::vector<std::string> run(const std::string& sql) {
        std::vector<std::string> out;
        for (auto& row : rows(sql))
            out.push_back(row.empty() ? "" : row[0]);
        return out;
    }
    // Runs `sql` and returns every row, every column as text.
    std::vector<std::vector<std::string>> rows(const std::string& sql) {
        PGresult* r = PQexec(conn_, sql.c_str());
        const auto status = PQresultStatus(r);
        INFO(sql << ": " << PQresultErrorMessage(r));
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) PQclear(r);
        REQUIRE((status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK));
        std::vector<std::vector<std::string>> out;
        for (int i = 0; i < PQntuples(r); ++i) {
            std::vector<std::string> row;
            for (int c = 0; c < PQnfields(r); ++c)
                row.emplace_back(PQgetvalue(r, i, c));
            out.push_back(std::move(row));
        }
        PQclear(r);
        return out;
    }

  private:
    PGconn* conn_ = nullptr;
};

}  // namespace factstr::testing
