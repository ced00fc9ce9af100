// Options of the persistent engines, as a store URL spells them or as a program sets them.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace factstr {

class Env;

struct SqliteOptions {
    std::string path;
    // full: a commit is on disk when append returns (synchronous=FULL in WAL).
    // normal: a power loss may drop the last commits; a process crash loses nothing.
    enum class Sync { full, normal } sync = Sync::full;
    // How long a writer waits for another process's write lock before failing.
    int busy_timeout_ms = 60000;
    // How often streams look for commits made by other processes.
    int poll_interval_ms = 5;
    // How many new facts each process keeps in its in-memory key map before a writer folds
    // them into the file's payload key index (memory per process vs. work per fold).
    int index_batch = 16384;
    // The clock and file faults (factstr/env.hpp); null: Env::system(). Shared so that it
    // outlives every connection of the store. Set from code only (no URL option).
    std::shared_ptr<Env> env;
};

// Parses "sqlite:PATH[?sync=full|normal&busy_timeout_ms=N&poll_ms=N&index_batch=N]";
// "sqlite://PATH" works too. Throws InvalidInput naming the unknown or malformed option.
// Pure: no file is touched. Thread-safe.
SqliteOptions parse_sqlite_url(std::string_view url);

struct PostgresOptions {
    // A libpq connection string: "postgres://user:pw@host:5432/db?sslmode=require" or
    // "host=… port=… dbname=… user=…"; every libpq parameter works.
    std::string conninfo;
    // How often streams look for commits made by other processes (LISTEN/NOTIFY wake-ups).
    int poll_interval_ms = 5;
};

}  // namespace factstr
