// The SQLite engine: the embedded, persistent default.
//
// Schema (version 3, statements.hpp): facts(sequence_number INTEGER PRIMARY KEY, …,
// batch_last) keeps every fact with the last sequence number of the append it came in (the
// batch boundary); event_types interns type names; payload_postings indexes every top-level
// scalar of every payload and every fact's event type (json::type_index_key, a key no payload
// member has); durable_streams keeps cursors.
//
// The key index is written in bulk, not per append: a random secondary-index insert per key
// would dirty a page per key and multiply what every commit writes. (Version 2 kept the event
// type in a B-tree index on facts, written on every append: 20-25 % of a batch append's time.)
// The index covers the facts up to key_index_state.keys_indexed_through; each process keeps
// the facts after that in its key tail (key_tail.hpp), and a writer folds the tail into the
// index once it holds index_batch facts. A lookup is the union of both, so it still costs
// about the number of matching facts. The index is a posting list per key (postings.hpp).
//
// Files: statements.hpp (SQL), schema.cpp (creation, validation, v1/v2 conversions),
// postings.cpp (the codec), key_tail.cpp (tail and fold), type_cache.cpp, reading.cpp (the
// read view: candidates), writing.cpp (group commit), sqlite_backend.cpp (opening, cursors,
// other processes).
//
// Writes go through one writer connection. Appends issued concurrently by threads of this
// process are queued and committed together in one transaction (group commit: one fsync),
// each keeping its own range and conflict outcome. Across processes, BEGIN IMMEDIATE makes the
// conditional check and the write one atomic step.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "factstr/database/sqlite_connection.hpp"
#include "factstr/internal/backend.hpp"
#include "key_tail.hpp"
#include "type_cache.hpp"

namespace factstr::sqlite {

class SqliteBackend final : public Backend {
  public:
    explicit SqliteBackend(SqliteOptions options);

    std::string describe() const override { return "sqlite:" + options_.path; }
    Env& env() override { return env_; }
    DatabaseLocation location() const override {
        return {DatabaseLocation::Kind::sqlite, options_.path, options_.busy_timeout_ms, nullptr};
    }

    void read(const std::function<void(LogView&)>& fn) override;
    SequenceNumber head() override;
    SequenceNumber commit_group(std::vector<WriteRequest*>& group) override;  // writing.cpp

    std::optional<SequenceNumber> load_cursor(std::string_view name) override;
    void save_cursor(std::string_view name, SequenceNumber position,
                     std::string_view query_json) override;
    std::vector<DurableCursorInfo> cursors() override;
    std::optional<std::uint64_t> storage_bytes() override;
    std::chrono::milliseconds external_poll_interval() const override {
        return std::chrono::milliseconds(options_.poll_interval_ms);
    }
    std::optional<SequenceNumber> poll_external_commits() override;

  private:
    std::unique_ptr<Connection> open_connection(int flags);
    // Runs fn on an idle reader connection (opened when none is idle).
    template <class Fn>
    auto with_reader(Fn&& fn);

    SqliteOptions options_;  // first: its Env outlives every connection below
    Env& env_;
    std::string vfs_name_;  // the Env's SQLite VFS ("" for the system Env)

    std::mutex write_mutex_;
    std::unique_ptr<Connection> writer_;

    std::mutex pool_mutex_;
    std::vector<std::unique_ptr<Connection>> idle_readers_;

    std::mutex poll_mutex_;
    std::unique_ptr<Connection> poller_;
    std::int64_t last_data_version_ = -1;

    KeyTail tail_;
    TypeCache types_;
};

}  // namespace factstr::sqlite
