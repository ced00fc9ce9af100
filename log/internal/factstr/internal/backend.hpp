// The engine port: what a storage engine (memory, SQLite, PostgreSQL) provides, and nothing
// more. The contract's evaluation — query results and their two versions, the context
// version, batch paging and the append_if decision — is written once above it
// (factstr/internal/evaluation.hpp) and reaches an engine only through a LogView:
//
//   head()                the snapshot's highest committed sequence number
//   ascending()           candidates of a query in a range, source by source, in blocks
//   newest_first()        candidates at or below a position, newest first, in blocks
//   batch_end_at()        where the batch holding a position ends
//   commit_group()        the write path: one transaction for a group of requests
//
// An engine picks its candidates as it likes (chains, posting lists, SQL); the shared
// evaluation verifies every candidate with the one matcher (CompiledQuery::matches), merges
// the sources, applies the versions rule and pages. Users never see this header; they use
// factstr::Store.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "factstr/env.hpp"
#include "factstr/internal/compiled_query.hpp"
#include "factstr/json.hpp"
#include "factstr/options.hpp"
#include "factstr/types.hpp"

namespace factstr {

class Env;

namespace database {
// The memory engine's home for the derived tables of the layers above (declared in
// factstr/database/memory_database.hpp, made by make_memory_database()).
class MemoryDatabase;
std::shared_ptr<MemoryDatabase> make_memory_database();
}  // namespace database

// A validated event, ready to be written.
struct PreparedEvent {
    std::string event_type;
    json::PreparedPayload payload;
    // Set for facts recorded elsewhere (an import); otherwise the commit time is used.
    std::optional<Timestamp> occurred_at;
};

// Validates a batch: not empty, every event type non-empty, every payload valid JSON.
// Throws InvalidInput naming the event (by index) that is wrong. Costs one parse per payload.
std::vector<PreparedEvent> prepare_events(std::vector<NewEvent>&& events);

// A stored fact as an engine hands it over. The views are valid during the sink call only.
struct StoredFact {
    SequenceNumber sequence_number = 0;
    std::int64_t occurred_at_us = 0;
    std::string_view event_type;
    std::string_view payload;  // compact JSON
    SequenceNumber batch_last = 0;
};

// Where an engine delivers candidates (implemented by the shared evaluation).
class CandidateSink {
  public:
    virtual ~CandidateSink() = default;
    // Called before the facts of each source. `sole`: this source alone holds every
    // candidate of the read, so the sink may end it early. `padded`: every payload view is
    // followed by json::kParsePadding readable bytes (parsed in place).
    virtual void begin_source(bool sole, bool padded) = 0;
    // A block of the current source's facts, in the read's order (ascending, or newest
    // first). Returns false to end the current source; the engine then begins the next.
    virtual bool take(std::span<const StoredFact> block) = 0;
    // Newest-first reads: candidates at or below this number no longer matter (the newest
    // match found so far); an engine may skip them.
    virtual SequenceNumber floor() const { return 0; }
    // Ascending reads: about how many matching facts the sink needs (it ends the source at
    // the batch boundary after them); an engine reading in order may fetch that many first.
    virtual std::size_t wanted() const { return SIZE_MAX; }
    // Whether the sink reads StoredFact::batch_last (pages do, queries do not): an engine for
    // which finding a batch's end costs work (memory walks the batch) may leave it 0.
    virtual bool needs_batch_ends() const { return true; }
};

// One consistent view of the log: a read snapshot, or a write transaction that holds the
// append lock. Used by one thread at a time, inside the call that lent it.
class LogView {
  public:
    // For ascending(): read up to the view's head (an engine may learn the head in the same
    // round trip as the candidates).
    static constexpr SequenceNumber kThroughHead = ~SequenceNumber{0};

    virtual ~LogView() = default;
    // The highest committed sequence number in this view (0: empty log).
    virtual SequenceNumber head() = 0;
    // Candidates of `query` — a superset of its matches — with after < n <= end, source by
    // source, each source ascending and without duplicates of its own (sources may overlap).
    // Never a fact above the head. `query.matches_all()`: one source, every fact.
    virtual void ascending(const CompiledQuery& query, SequenceNumber after, SequenceNumber end,
                           CandidateSink& sink) = 0;
    // Candidates of `query` with sink.floor() < n <= at_most, source by source, each newest
    // first, until the sink ends the source. Not called for matches_all().
    virtual void newest_first(const CompiledQuery& query, SequenceNumber at_most,
                              CandidateSink& sink) = 0;
    // The last sequence number of the batch holding `position` (0 < position <= head).
    virtual SequenceNumber batch_end_at(SequenceNumber position) = 0;
};

// One caller's append (no context) or append_if, and its outcome.
struct WriteRequest {
    std::vector<PreparedEvent> events;
    const CompiledQuery* context = nullptr;      // null: a plain append
    std::optional<CompiledQuery> owned_context;  // for asynchronous requests: `context` points here
    std::optional<SequenceNumber> expected;
    std::optional<AppendIfResult> result;  // set by the commit, unless `error` is
    std::exception_ptr error;
    // Asynchronous requests: called once with the request when its outcome is known, on the
    // thread that committed it. Empty: a blocking caller waits for `done`.
    std::function<void(WriteRequest&)> completion;
    bool done = false;
};

// Where a store keeps its data, so that layers above (projections) can open their own
// connections to the same database. `target`: the SQLite file path, or a libpq connection
// string (it may hold a password: never print it); empty for memory.
struct DatabaseLocation {
    enum class Kind { memory, sqlite, postgres } kind = Kind::memory;
    std::string target;
    int busy_timeout_ms = 60000;  // SQLite: how long a writer waits for the write lock
    // Memory: the engine's database for derived tables, living as long as the engine.
    std::shared_ptr<database::MemoryDatabase> memory;
};

class GroupCommit;

// An engine. Thread-safe: every member may be called from any thread at once.
class Backend {
  public:
    Backend();
    virtual ~Backend();

    virtual DatabaseLocation location() const = 0;
    // The Env whose clocks this engine reads and through which the store above starts its
    // threads: SqliteOptions::env for SQLite, Env::system() otherwise.
    virtual Env& env() { return Env::system(); }
    // A description for messages, e.g. "sqlite:/tmp/facts.db". Never contains a password.
    virtual std::string describe() const = 0;

    // ---- read side ------------------------------------------------------------------------
    // Runs `fn` on a fresh read view (SQLite, PostgreSQL: a read transaction on a pooled
    // connection; memory: under the shared lock). Cost: one snapshot.
    virtual void read(const std::function<void(LogView&)>& fn) = 0;
    // The highest committed sequence number (0 for an empty log). One round trip on
    // PostgreSQL, one indexed read on SQLite, an atomic load on memory.
    virtual SequenceNumber head() = 0;

    // ---- write side -----------------------------------------------------------------------
    // Commits a group of requests in one transaction, in order: each request's outcome goes
    // into its result (the shared decide_group makes the append_if decisions) or error.
    // Returns the new head, 0 when nothing was written. Called by one thread at a time.
    virtual SequenceNumber commit_group(std::vector<WriteRequest*>& group) = 0;
    // Whether commits share a transaction when requests overlap (SQLite, PostgreSQL: one
    // fsync for the group). Memory commits each request at once under its lock.
    virtual bool groups_commits() const { return true; }

    // Capability: an engine that can decide a whole append_if inside its own statement says
    // so here (PostgreSQL, for contexts of event types and top-level scalars). The decision
    // must equal the shared one; statement_context_version() exposes the statement's view of
    // the context version so that a differential test can hold the two side by side.
    virtual bool decides_append_if_in_statement(const CompiledQuery&) const { return false; }
    virtual std::optional<SequenceNumber> statement_context_version(const CompiledQuery&) {
        return std::nullopt;
    }

    // ---- cursors, size, other processes ---------------------------------------------------
    // Durable cursors. save_cursor never moves a cursor backwards. One statement each.
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

    // ---- written once, over the port ------------------------------------------------------
    // The shared evaluation on a read view (see evaluation.hpp).
    QueryResult query(const CompiledQuery& query, std::size_t limit = SIZE_MAX);
    BatchPage read_batches(SequenceNumber after, const CompiledQuery& filter,
                           std::size_t max_facts);
    // Blocking writes through the group commit.
    AppendResult append(std::vector<PreparedEvent>&& events);
    AppendIfResult append_if(std::vector<PreparedEvent>&& events, const CompiledQuery& context,
                             std::optional<SequenceNumber> expected);
    // Asynchronous write: queued into the same group commit as the blocking calls;
    // `request->completion` runs once its outcome is known. The request must stay alive until
    // then. When no commit is running, the calling thread runs one (with everything queued
    // meanwhile), so a few threads keep many requests in flight.
    void submit(std::shared_ptr<WriteRequest> request);

    // The commit signal: `listener` is called with the new head after every commit made
    // through this object. Set once, before the first append.
    void set_commit_listener(std::function<void(SequenceNumber)> listener) {
        commit_listener_ = std::move(listener);
    }

  protected:
    void notify_committed(SequenceNumber head) const {
        if (commit_listener_) commit_listener_(head);
    }

  private:
    void run_blocking(WriteRequest& request);
    std::function<void(SequenceNumber)> commit_listener_;
    std::unique_ptr<GroupCommit> group_commit_;
};

// Opens the backend named by a URL: "memory:", "sqlite:PATH" (options as URL query),
// "postgres://…" or a libpq connection string. Throws InvalidInput(unsupported_url) for an
// unknown scheme, StoreError when the store cannot be opened.
std::unique_ptr<Backend> open_backend(std::string_view url);

std::unique_ptr<Backend> make_memory_backend();

// Opens (creating when missing) a factstr SQLite file. Throws StoreError(schema_mismatch)
// for a file that is not ours or of another schema version, without modifying it.
std::unique_ptr<Backend> make_sqlite_backend(SqliteOptions options);

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

}  // namespace factstr
