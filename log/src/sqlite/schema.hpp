// Opening a factstr SQLite file: foreign files are refused untouched; an empty file gets the
// schema; a file of version 1 or 2 is converted, in one write transaction (another process
// may be doing the same: the second finds it done); a newer version is refused untouched.
#pragma once

#include <string>

#include "factstr/database/sqlite_connection.hpp"
#include "type_cache.hpp"

namespace factstr::sqlite {

// A non-empty file that is not a SQLite database is never opened for writing: throws
// StoreError(schema_mismatch).
void refuse_foreign_file(const std::string& path);

// Creates or converts the schema on `db`, or validates it. Throws
// StoreError(schema_mismatch) for a file that is not a factstr store or has another schema
// version, without changing it.
void ensure_schema(Connection& db, TypeCache& types);

}  // namespace factstr::sqlite
