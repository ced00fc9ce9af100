// factstr::Store — the log a program works with: append, query, append_if, and live and
// durable streams over any backend (memory, SQLite, PostgreSQL).
#pragma once

#include <concepts>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "factstr/errors.hpp"
#include "factstr/options.hpp"
#include "factstr/types.hpp"

namespace factstr {

class Backend;

namespace detail {
struct SubscriptionState;
class StreamHub;
}  // namespace detail

using Batch = std::vector<EventRecord>;

// Reports the end of an asynchronous handler's work on one batch. Call exactly once, from
// any thread. A Completion destroyed without being called counts as a failure.
class Completion {
  public:
    Completion(std::shared_ptr<detail::SubscriptionState> state, SequenceNumber batch_end);
    Completion(Completion&&) noexcept;
    Completion& operator=(Completion&&) = delete;
    Completion(const Completion&) = delete;
    ~Completion();

    void succeed() { finish(true, {}); }
    void fail(std::string reason) { finish(false, std::move(reason)); }

    // For a run of batches (StreamHandler::async_runs), when not all of it succeeded: the
    // batches up to and including the one ending at `handled_through` (0: none) succeeded;
    // the run stopped there (the stream was unsubscribed) — or, with `failed_batch_end`, at
    // the batch ending there, which failed for `reason`. succeed() and fail() cover the
    // whole run.
    void succeed_through(SequenceNumber handled_through) { finish_run(handled_through, 0, {}); }
    void fail_after(SequenceNumber handled_through, SequenceNumber failed_batch_end,
                    std::string reason) {
        finish_run(handled_through, failed_batch_end, std::move(reason));
    }

  private:
    void finish(bool success, std::string reason);
    void finish_run(SequenceNumber handled_through, SequenceNumber failed_batch_end,
                    std::string reason);
    std::shared_ptr<detail::SubscriptionState> state_;
    SequenceNumber batch_end_;
};

// What a stream calls with each batch. Built from a callable taking `const Batch&` and
// returning void or bool: returning normally (or true) is success; false or an exception is
// failure. Use StreamHandler::async for handlers that finish later.
class StreamHandler {
  public:
    using AsyncFn = std::function<void(const Batch&, Completion)>;
    using RunFn = std::function<void(const std::vector<CommittedBatch>&, Completion)>;

    template <class F>
    requires std::invocable<F&, const Batch&> &&
        (!std::same_as<std::remove_cvref_t<F>, StreamHandler>)
            StreamHandler(F handler)  // NOLINT: implicit on purpose, so lambdas can be passed
        : fn_([h = std::move(handler)](const Batch& batch, Completion done) mutable {
              try {
                  if constexpr (std::is_same_v<std::invoke_result_t<F&, const Batch&>, bool>) {
                      if (h(batch)) {
                          done.succeed();
                      } else {
                          done.fail("handler returned false");
                      }
                  } else {
                      h(batch);
                      done.succeed();
                  }
              } catch (const std::exception& e) {
                  done.fail(e.what());
              } catch (...) {
                  done.fail("handler threw a non-standard exception");
              }
          }) {}

    // A handler that reports success or failure through the Completion, possibly later
    // and from another thread. The stream delivers its next batch only after that.
    static StreamHandler async(AsyncFn fn) { return StreamHandler(std::move(fn), 0); }

    // A handler that takes a run of consecutive batches at once (what the stream read in one
    // go, at most a page of a few thousand facts; the vector is valid during the call) and
    // handles them in order, each as its own batch. Its Completion reports succeed() for the
    // whole run, or how far it got (succeed_through, fail_after). One hand-over per run
    // instead of one per batch: for handlers that run on another thread, such as an event
    // loop. Delivery semantics are those of async: a batch after a failed one is not handled
    // by a durable stream; a live stream goes on with the next.
    static StreamHandler async_runs(RunFn fn) {
        StreamHandler handler(AsyncFn{}, 0);
        handler.run_fn_ = std::move(fn);
        return handler;
    }

    const AsyncFn& fn() const { return fn_; }
    const RunFn& run_fn() const { return run_fn_; }  // empty unless made by async_runs

  private:
    StreamHandler(AsyncFn fn, int) : fn_(std::move(fn)) {}
    AsyncFn fn_;
    RunFn run_fn_;
};

// A registered stream. Destroying the handle does NOT unsubscribe; call unsubscribe().
class Subscription {
  public:
    Subscription() = default;
    explicit Subscription(std::shared_ptr<detail::SubscriptionState> state);

    // Stops future deliveries. A batch already being handled finishes; for a durable stream
    // its success still advances the cursor.
    void unsubscribe();
    // False after unsubscribe(), after a durable handler failure, or after the store closed.
    bool active() const;
    // Why a durable stream stopped (its handler failed), if it did.
    std::optional<std::string> failure() const;
    // The last sequence number this stream has fully handled or skipped.
    SequenceNumber position() const;

  private:
    std::shared_ptr<detail::SubscriptionState> state_;
};

struct StoreOptions {
    // Threads that run stream handlers (started at the first subscription).
    unsigned stream_threads = 2;
};

// The log a program works with. Thread-safe: every member may be called from any thread at
// once, except close(), assignment and destruction, which must not race with other calls.
// Costs below are per call; "round trip" is one exchange with the PostgreSQL server.
class Store {
  public:
    // Takes ownership of an engine (internal; use open(), memory_store(), sqlite_store() or
    // bootstrap()). The engine port is declared in factstr/internal/backend.hpp.
    explicit Store(std::unique_ptr<Backend> backend, StoreOptions options = {});
    Store(Store&&) noexcept;
    Store& operator=(Store&&) noexcept;
    ~Store();  // close()

    // Appends the events as one batch: all or nothing, one consecutive range.
    // Throws InvalidInput (empty batch, empty event type, invalid JSON naming the event) and
    // writes nothing; StoreError when the engine fails. Cost: one commit (SQLite: one fsync
    // with sync=full; PostgreSQL: one or two round trips), shared with the appends of other
    // threads that are in flight at the same time (group commit).
    AppendResult append(std::vector<NewEvent> events);

    // Appends only when the context's current version (the highest sequence number matching
    // `context_query`, ignoring its min_sequence_number) equals `expected_context_version`
    // (nullopt = no matching fact yet). A mismatch is returned as a conflict, not thrown.
    // Cost: an append plus the context's newest match (an index lookup, O(log n) on memory
    // and SQLite), decided inside the same commit.
    AppendIfResult append_if(std::vector<NewEvent> events, const EventQuery& context_query,
                             std::optional<SequenceNumber> expected_context_version);

    // Asynchronous append and append_if: validated at once (invalid input throws here and
    // nothing is queued), then committed through the same group commit as the blocking calls.
    // `done` is called exactly once with the outcome (result set) or the error (error set),
    // on the thread that committed it — the caller's own thread when no commit was running,
    // so keep it short and never block in it. A few threads can keep many appends in flight:
    // requests queued while a commit runs go into the next one together. close() waits for
    // the outstanding ones.
    using AppendDone = std::function<void(const AppendIfResult* result, std::exception_ptr error)>;
    void append_async(std::vector<NewEvent> events, AppendDone done);
    void append_if_async(std::vector<NewEvent> events, const EventQuery& context_query,
                         std::optional<SequenceNumber> expected_context_version, AppendDone done);

    // Appends facts recorded elsewhere (an import) as one batch, keeping each record's
    // occurred_at and event; the records' own sequence numbers are not used. With
    // `expected_first`, the batch must start exactly at that sequence number (the log's head
    // is expected_first - 1); otherwise nothing is written and InvalidInput is thrown.
    AppendResult append_recorded(std::vector<EventRecord> records,
                                 std::optional<SequenceNumber> expected_first = std::nullopt);

    // Facts matching the query after its min_sequence_number, ascending, with both versions.
    // Throws InvalidInput for a malformed query. Costs about the number of matching facts
    // (indexed by event type and top-level payload scalars); one snapshot (PostgreSQL: one
    // round trip, a second when nothing is returned).
    QueryResult query(const EventQuery& query) const;
    // The same, returning at most `limit` facts (the first ones); current_context_version is
    // still the newest match of the whole log. Costs about `limit` candidates plus one
    // newest-match lookup.
    QueryResult query(const EventQuery& query, std::size_t limit) const;

    // One page of committed batches after `after`, oldest first, each reduced to its facts
    // matching `query` (its min_sequence_number is ignored; EventQuery{} = every fact); about
    // `max_facts` facts, never a batch split. `scanned_through` says how far the log was
    // examined: pass it as the next `after` (a page may hold no batch and still move on).
    // Done when scanned_through >= head(). Costs one snapshot and at most a window of
    // max(16 × max_facts, 65536) sequence numbers.
    BatchPage read_page(SequenceNumber after, const EventQuery& query, std::size_t max_facts) const;

    // Every committed batch after `after` whose last fact is at or below `through`, oldest
    // first, each reduced to its facts matching `query` (as read_page, which it calls with
    // pages of about `page_facts` facts), until `visit` returns false. Returns how far the log
    // was read (a position to continue from). For tools that walk the log: export, stats.
    SequenceNumber for_each_batch(SequenceNumber after, SequenceNumber through,
                                  const EventQuery& query, std::size_t page_facts,
                                  const std::function<bool(const CommittedBatch&)>& visit) const;

    // Live streams: every batch committed after registration (stream_to: its matching facts,
    // nothing when none match), one batch at a time in commit order, on a stream thread.
    Subscription stream_all(StreamHandler handler);
    Subscription stream_to(const EventQuery& query, StreamHandler handler);

    // Durable streams: replay the committed batches after the cursor stored under the name,
    // then continue live, with no gap and no duplicate. The cursor advances only after the
    // handler succeeded for a batch; a failure stops the stream and keeps the cursor.
    // Returns when the replay (up to the head at registration) has been handled.
    // Throws StreamError(handler_failed) when a replayed batch fails, and
    // StreamError(stream_busy) when the name is already active in this store.
    // Do not call these from inside a handler; use the _async forms there.
    Subscription stream_all_durable(const DurableStream& stream, StreamHandler handler);
    Subscription stream_to_durable(const DurableStream& stream, const EventQuery& query,
                                   StreamHandler handler);
    // Non-blocking registration: `done` is called once, on a stream thread, with the
    // subscription or with the exception that the blocking form would throw.
    using RegistrationDone = std::function<void(Subscription, std::exception_ptr)>;
    void stream_to_durable_async(const DurableStream& stream, std::optional<EventQuery> query,
                                 StreamHandler handler, RegistrationDone done);

    // A stream for consumers that keep their own checkpoint with their own writes
    // (projectors, `factstr tail`): starts after `after` and hands over whole pages — the
    // committed batches after the position with their facts matching `query`, up to about
    // `max_facts` facts, batches never split — first the replay of the log, then live pages,
    // with no gap and no duplicate at the hand-over. A page may have no batch (nothing
    // matched) but still moves `scanned_through`, so the consumer can record how far the log
    // was examined. One page at a time; the next page follows a successful Completion; a
    // failure stops the stream (Subscription::failure names it).
    using PageHandler = std::function<void(const BatchPage&, Completion)>;
    Subscription stream_pages(SequenceNumber after, std::optional<EventQuery> query,
                              std::size_t max_facts, PageHandler handler);

    // The highest committed sequence number (0 when empty). An atomic load on memory, one
    // indexed read on SQLite, one round trip on PostgreSQL.
    SequenceNumber head() const;
    // Every durable stream's cursor. One statement.
    std::vector<DurableCursorInfo> durable_cursors() const;
    // The store as messages name it ("sqlite:/tmp/x.db"; never a password). No I/O.
    std::string describe() const;
    // Bytes the store occupies: the SQLite file and its WAL, the PostgreSQL database, the
    // memory store's facts and indexes. nullopt when it cannot be told. One stat or query.
    std::optional<std::uint64_t> storage_bytes() const;
    // The Env the store reads its clocks from and starts its threads through (factstr/env.hpp;
    // SqliteOptions::env, else Env::system()). A layer above that starts a thread of its own
    // (the projection engine) starts it here too. No I/O; thread-safe.
    Env& env() const;
    // The engine (internal: for the layers above — projections — that reach the engine's
    // database; declared in factstr/internal/backend.hpp).
    Backend& backend() const;

    // Waits for outstanding asynchronous appends, stops every stream (no handler runs after
    // close returns) and releases the engine. Further calls throw StoreError(closed).
    void close();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Opens a store from a URL: "memory:", "sqlite:PATH", "postgres://…".
Store open(std::string_view url, StoreOptions options = {});

// The PostgreSQL store in database `database_name` on the server at `server_url`, creating
// the database when missing. The name must match [A-Za-z_][A-Za-z0-9_]* (InvalidInput, before
// any SQL is sent).
Store bootstrap(std::string_view server_url, std::string_view database_name,
                StoreOptions options = {});

// A new, empty memory store.
Store memory_store(StoreOptions options = {});
// The SQLite store in the file at `path` (created when missing); `sqlite.path` is ignored.
Store sqlite_store(const std::string& path, SqliteOptions sqlite = {}, StoreOptions options = {});

}  // namespace factstr
