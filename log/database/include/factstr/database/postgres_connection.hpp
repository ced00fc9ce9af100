// A libpq connection and the error mapping every PostgreSQL call goes through. Used by one
// thread at a time. Messages name the server by its connection parameters without the
// password.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "factstr/errors.hpp"

namespace factstr::postgres {

// Parsed connection parameters (PQconninfoParse), kept as keyword/value pairs so that a
// parameter (dbname) can be overridden, and described without the password.
class Conninfo {
  public:
    // Parses a libpq key=value string or a postgres:// / postgresql:// URL. Throws
    // InvalidInput(invalid_argument) with the password removed from the message.
    static Conninfo parse(std::string_view conninfo);

    // The same parameters with `keyword` set to `value`.
    Conninfo with(std::string_view keyword, std::string value) const;

    // "postgres:host=… port=… dbname=… user=…": every set parameter except the password.
    const std::string& description() const { return description_; }
    // Removes the password (if any) from a text, e.g. a libpq error message.
    std::string redact(std::string text) const;

    const std::vector<std::pair<std::string, std::string>>& parameters() const { return params_; }
    // The parameters as a libpq key='value' string, password included.
    std::string to_conninfo() const;

  private:
    void describe();
    std::vector<std::pair<std::string, std::string>> params_;
    std::string description_;
    std::string password_;
};

// Removes a password from a connection string that could not be parsed.
std::string redact_raw_conninfo(std::string_view conninfo);

// Thrown for every PostgreSQL failure. `connection_lost` is set when the connection is
// unusable (the next use resets it); `sqlstate` names the server's error, when there is one.
// `failed_command` is the index (in a pipeline; 0 for one statement) of the command the
// server answered with this error: it and every later command of the pipeline did not take
// effect (the server skips the rest of a pipeline after an error). Unknown (nullopt) when
// the error is the client's own, e.g. a connection that broke before any answer came.
class PgError : public StoreError {
  public:
    PgError(ErrorCode code, const std::string& message, bool connection_lost, std::string sqlstate,
            std::optional<std::size_t> failed_command = std::nullopt)
        : StoreError(code, message),
          connection_lost_(connection_lost),
          sqlstate_(std::move(sqlstate)),
          failed_command_(failed_command) {}
    bool connection_lost() const { return connection_lost_; }
    const std::string& sqlstate() const { return sqlstate_; }
    std::optional<std::size_t> failed_command() const { return failed_command_; }

  private:
    bool connection_lost_;
    std::string sqlstate_;
    std::optional<std::size_t> failed_command_;
};

struct ResultDeleter {
    void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// A statement with its text parameters (every value is bound, never spliced into SQL).
struct Command {
    std::string sql;
    std::vector<std::optional<std::string>> params;
};

class Connection {
  public:
    // Connects; throws PgError(connection_failure) when the server cannot be reached.
    // With `prepare_statements`, every statement sent through exec_params and pipeline is
    // prepared once per session (in the same round trip as its first use) and then only bound
    // and executed: parsing and rewriting a statement costs as much as a small insert. Plans
    // stay custom (plan_cache_mode = force_custom_plan): the parameters decide the plan, as
    // before. Only for statements over tables whose shape does not change (a prepared
    // statement must keep its result columns).
    explicit Connection(const Conninfo& info, bool prepare_statements = false);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    PGconn* handle() const { return conn_; }
    const Conninfo& info() const { return info_; }

    // Resets a connection that dropped. Throws PgError(connection_failure) when the server
    // cannot be reached again. Returns true when a reset happened (session state is lost).
    bool ensure_ok();
    bool ok() const { return PQstatus(conn_) == CONNECTION_OK; }

    // Simple-protocol statement(s) without parameters; returns the last result.
    Result exec(const char* sql, std::string_view doing);
    // One statement with text parameters.
    Result exec_params(const std::string& sql,
                       const std::vector<std::optional<std::string>>& params,
                       std::string_view doing);
    // Sends every command in one round trip (pipeline mode) and returns their results in
    // order. Throws at the first failing command (the others are not applied).
    std::vector<Result> pipeline(const std::vector<Command>& commands, std::string_view doing);

    // Rolls back an open transaction, if any; never throws.
    void rollback_quietly();

    // Throws the PgError for `result` (or the connection's own error). `command` is the
    // index of the command `result` answers (taken as where the pipeline stopped only when
    // the server sent the error), or with `unsent`, the first command that never left.
    [[noreturn]] void fail(const PGresult* result, std::string_view doing,
                           std::optional<std::size_t> command = std::nullopt, bool unsent = false);

  private:
    void connect();
    void start_session();
    Conninfo info_;
    PGconn* conn_ = nullptr;
    bool prepare_ = false;
    // SQL text -> name of its prepared statement in this session.
    std::unordered_map<std::string, std::string> prepared_;
    std::uint64_t next_statement_ = 0;
};

// Parsing of text-format result values.
std::int64_t get_int(const PGresult* result, int row, int column);
inline std::string_view get_text(const PGresult* result, int row, int column) {
    return {PQgetvalue(result, row, column),
            static_cast<std::size_t>(PQgetlength(result, row, column))};
}

// Appends `text` as an element of a PostgreSQL array literal ("…", with " and \ escaped).
void append_array_element(std::string& out, std::string_view text);

}  // namespace factstr::postgres
