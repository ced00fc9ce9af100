// The backend port: what a storage engine provides so that the shared query evaluation,
// streams and projections can run on it. Memory, SQLite and PostgreSQL implement it.
// Users normally do not call a Backend directly; they use factstr::Store.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "factstr/json.hpp"
#include "factstr/query.hpp"
#include "factstr/types.hpp"

namespace factstr {

// A validated event, ready to be written.
struct PreparedEvent {
    std::string event_type;
    json::PreparedPayload payload;
    // Set for facts recorded elsewhere (an import); otherwise the commit time is used.
    std::optional<Timestamp> occurred_at;
};

// Validates a batch: not empty, every event type non-empty, every payload valid JSON.
// Throws InvalidInput naming the event (by index) that is wrong.
std::vector<PreparedEvent> prepare_events(std::vector<NewEvent>&& events);

// One committed append as seen by a reader: the facts of that append that matched the
// reader's filter (never empty) and the last sequence number of the whole append.
struct CommittedBatch {
    SequenceNumber last_sequence_number = 0;
    std::vector<EventRecord> records;
};

struct BatchPage {
    std::vector<CommittedBatch> batches;
    // Every fact up to here was examined; a reader may move its position here even when
    // no batch matched.
    SequenceNumber scanned_through = 0;
};

// Where a store keeps its data, so that layers above (projections) can open their own
// connections to the same database. `target`: the SQLite file path, or a libpq connection
// string (it may hold a password: never print it); empty for memory.
struct DatabaseLocation {
    enum class Kind { memory, sqlite, postgres } kind = Kind::memory;
    std::string target;
    int busy_timeout_ms = 60000;  // SQLite: how long a writer waits for the write lock
};

class Backend {
  public:
    virtual ~Backend() = default;

    virtual DatabaseLocation location() const = 0;

    // A description for messages, e.g. "sqlite:/tmp/facts.db". Never contains a password.
    virtual std::string describe() const = 0;

    // Commits all events as one batch with one consecutive range, or nothing.
    virtual AppendResult append(std::vector<PreparedEvent>&& events) = 0;
    // Commits only when the highest sequence number matching `context` equals `expected`;
    // the check and the write are one atomic step.
    virtual AppendIfResult append_if(std::vector<PreparedEvent>&& events,
                                     const CompiledQuery& context,
                                     std::optional<SequenceNumber> expected) = 0;
    virtual QueryResult query(const CompiledQuery& query) = 0;

    // Committed batches with facts after `after`, oldest first, each reduced to the facts
    // matching `filter`; batches with no matching fact are left out. Stops once about
    // `max_facts` facts were collected, never inside a batch.
    virtual BatchPage read_batches(SequenceNumber after, const CompiledQuery& filter,
                                   std::size_t max_facts) = 0;

    // The highest committed sequence number (0 for an empty log).
    virtual SequenceNumber head() = 0;

    // Durable cursors. save_cursor never moves a cursor backwards.
    virtual std::optional<SequenceNumber> load_cursor(std::string_view name) = 0;
    virtual void save_cursor(std::string_view name, SequenceNumber position,
                             std::string_view query_json) = 0;
    virtual std::vector<DurableCursorInfo> cursors() = 0;

    // Bytes the store occupies (files, database, or memory for facts and indexes); nullopt
    // when it cannot be told.
    virtual std::optional<std::uint64_t> storage_bytes() { return std::nullopt; }

    // Commits made by other processes on the same storage become visible through polling.
    // Zero: no other process can write (memory).
    virtual std::chrono::milliseconds external_poll_interval() const { return {}; }
    // Returns the head when other writers may have committed since the last call. Cheap.
    virtual std::optional<SequenceNumber> poll_external_commits() { return std::nullopt; }

    // The commit signal: `listener` is called with the new head after every commit made
    // through this object. Set once, before the first append.
    void set_commit_listener(std::function<void(SequenceNumber)> listener) {
        commit_listener_ = std::move(listener);
    }

    // State a layer above keeps per store (the memory store's derived tables): the object
    // attached under `key`, made by `make` on first use. Thread-safe.
    std::shared_ptr<void> attachment(const std::string& key,
                                     const std::function<std::shared_ptr<void>()>& make) {
        std::lock_guard lock(attachments_mutex_);
        for (auto& [k, value] : attachments_)
            if (k == key) return value;
        attachments_.emplace_back(key, make());
        return attachments_.back().second;
    }

  protected:
    void notify_committed(SequenceNumber head) const {
        if (commit_listener_) commit_listener_(head);
    }

  private:
    std::function<void(SequenceNumber)> commit_listener_;
    std::mutex attachments_mutex_;
    std::vector<std::pair<std::string, std::shared_ptr<void>>> attachments_;
};

// Opens the backend named by a URL: "memory:", "sqlite:PATH" (options as URL query),
// "postgres://…" or a libpq connection string. Throws InvalidInput(unsupported_url) for an
// unknown scheme, StoreError when the store cannot be opened.
std::unique_ptr<Backend> open_backend(std::string_view url);

std::unique_ptr<Backend> make_memory_backend();

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
};

// Parses "sqlite:PATH[?sync=full|normal&busy_timeout_ms=N&poll_ms=N&index_batch=N]";
// "sqlite://PATH" works too. Throws InvalidInput naming the unknown or malformed option.
SqliteOptions parse_sqlite_url(std::string_view url);
// Opens (creating when missing) a factstr SQLite file. Throws StoreError(schema_mismatch)
// for a file that is not ours or of another schema version, without modifying it.
std::unique_ptr<Backend> make_sqlite_backend(SqliteOptions options);

struct PostgresOptions {
    // A libpq connection string: "postgres://user:pw@host:5432/db?sslmode=require" or
    // "host=… port=… dbname=… user=…"; every libpq parameter works.
    std::string conninfo;
    // How often streams look for commits made by other processes (LISTEN/NOTIFY wake-ups).
    int poll_interval_ms = 5;
};

// Opens a factstr PostgreSQL database, creating the schema when the database has none.
// Throws StoreError(schema_mismatch) for a database holding another schema (or another
// version of ours), without modifying it; StoreError(connection_failure) when the server
// cannot be reached. Messages never contain the password.
std::unique_ptr<Backend> make_postgres_backend(PostgresOptions options);
std::unique_ptr<Backend> make_postgres_backend(std::string conninfo);

// Creates the database `database_name` on the server named by `server_url` when it does not
// exist (UTF8, C collation), then opens it. The name must match [A-Za-z_][A-Za-z0-9_]* (at most
// 63 characters); anything else is refused with InvalidInput before any SQL is sent.
std::unique_ptr<Backend> bootstrap_postgres(std::string_view server_url,
                                            std::string_view database_name);

// Bytes a memory backend holds for facts and indexes; 0 for other backends.
std::size_t memory_backend_bytes(const Backend& backend);

}  // namespace factstr
