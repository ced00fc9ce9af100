// Typed errors. Every failure that is not a normal outcome (a conflict is a normal outcome,
// see AppendIfResult) is thrown as one of these, with a message naming what was wrong.
#pragma once

#include <stdexcept>
#include <string>

namespace factstr {

enum class ErrorCode {
    empty_append,         // append/append_if called with no events
    invalid_json,         // a payload or predicate that is not valid JSON
    invalid_query,        // a malformed query
    invalid_argument,     // another invalid argument (a name, a URL, an option)
    unsupported_url,      // a store URL whose scheme is unknown
    schema_mismatch,      // a database that is not ours, or of another schema version
    corrupt_database,     // a database file that cannot be read
    storage_failure,      // the engine underneath failed (I/O, constraint, SQL error)
    connection_failure,   // the server could not be reached or the connection dropped
    outcome_unknown,      // the connection dropped while a commit was in flight
    handler_failed,       // a durable stream's handler failed during replay
    stream_busy,          // a durable stream name is already active in this store
    closed,               // the store was closed
    invalid_declaration,  // a projection declaration that cannot work
    declaration_changed,  // derived data of another version of a projection's declaration
    projection_failed,    // a fact a projection cannot apply (named with its position)
};

class Error : public std::runtime_error {
  public:
    Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
    ErrorCode code() const noexcept { return code_; }

  private:
    ErrorCode code_;
};

// The caller's input was wrong; nothing was written. Codes: empty_append, invalid_json,
// invalid_query, invalid_argument, unsupported_url, invalid_declaration.
class InvalidInput : public Error {
    using Error::Error;
};

// The store could not do its work; for appends, nothing was written unless the code is
// outcome_unknown. Codes: schema_mismatch, corrupt_database, storage_failure,
// connection_failure, outcome_unknown, closed, declaration_changed, projection_failed.
class StoreError : public Error {
    using Error::Error;
};

// A stream could not be registered or was stopped. Codes: handler_failed, stream_busy.
class StreamError : public Error {
    using Error::Error;
};

const char* to_string(ErrorCode code) noexcept;

}  // namespace factstr
