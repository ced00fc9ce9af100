#include "factstr/errors.hpp"

namespace factstr {

const char* to_string(ErrorCode code) noexcept {
    switch (code) {
        case ErrorCode::empty_append:
            return "empty_append";
        case ErrorCode::invalid_json:
            return "invalid_json";
        case ErrorCode::invalid_query:
            return "invalid_query";
        case ErrorCode::invalid_argument:
            return "invalid_argument";
        case ErrorCode::unsupported_url:
            return "unsupported_url";
        case ErrorCode::schema_mismatch:
            return "schema_mismatch";
        case ErrorCode::corrupt_database:
            return "corrupt_database";
        case ErrorCode::storage_failure:
            return "storage_failure";
        case ErrorCode::connection_failure:
            return "connection_failure";
        case ErrorCode::outcome_unknown:
            return "outcome_unknown";
        case ErrorCode::handler_failed:
            return "handler_failed";
        case ErrorCode::stream_busy:
            return "stream_busy";
        case ErrorCode::closed:
            return "closed";
        case ErrorCode::invalid_declaration:
            return "invalid_declaration";
        case ErrorCode::declaration_changed:
            return "declaration_changed";
        case ErrorCode::projection_failed:
            return "projection_failed";
    }
    return "unknown";
}

}  // namespace factstr
