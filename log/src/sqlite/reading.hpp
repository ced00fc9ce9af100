// The SQLite engine's read view (the engine port's LogView) over one connection inside a
// transaction: a read snapshot, or the writer's transaction holding the write lock.
//
// Candidates come from the key index: for a filter with indexable predicates, the posting
// list of the rarest key of each predicate; otherwise those of its event types; otherwise a
// scan. Each key's candidates are its posting rows up to keys_indexed_through, then the key
// tail's entries (and ranges the tail does not cover, scanned). Event types that make up much
// of a range are read in one ordered pass instead, skipping other types by id.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "factstr/database/sqlite_connection.hpp"
#include "factstr/internal/backend.hpp"
#include "key_tail.hpp"
#include "type_cache.hpp"

namespace factstr::sqlite {

class SqliteView final : public LogView {
  public:
    // Reads the snapshot's head and keys_indexed_through and brings the tail up to the head.
    SqliteView(Connection& db, TypeCache& types, KeyTail& tail);

    SequenceNumber head() override { return head_; }
    SequenceNumber indexed_through() const { return indexed_through_; }
    void ascending(const CompiledQuery& query, SequenceNumber after, SequenceNumber end,
                   CandidateSink& sink) override;
    void newest_first(const CompiledQuery& query, SequenceNumber at_most,
                      CandidateSink& sink) override;
    SequenceNumber batch_end_at(SequenceNumber position) override;

  private:
    // Where a query's candidates come from: every fact, or the postings of one key — a
    // payload key, or an event type's key (then `type_id` is the type's id, else 0).
    struct Leaf {
        enum class Kind { scan, key } kind;
        std::int64_t value = 0;
        std::int64_t type_id = 0;
    };
    std::vector<Leaf> plan(const CompiledQuery& query);
    std::int64_t rarest_key(const std::vector<std::uint64_t>& keys);
    std::uint64_t candidate_count(std::int64_t key, SequenceNumber low, SequenceNumber high);

    // Facts of one source in (low, high], ascending or descending, in blocks; `type_ids`:
    // only facts of these types (empty: all). False when the sink ended the source.
    bool scan(SequenceNumber low, SequenceNumber high, bool descending,
              const std::vector<std::int64_t>& type_ids, CandidateSink& sink);
    // The facts at `sequences` (in the source's order), in blocks; a run of consecutive
    // numbers is read as one range. `growing`: blocks of 1, 4, 16, 64 facts (newest-first
    // reads usually stop at the first).
    bool read_facts(const std::vector<SequenceNumber>& sequences, bool growing,
                    CandidateSink& sink);

    Connection& db_;
    TypeCache& types_;
    KeyTail& tail_;
    SequenceNumber head_ = 0;
    SequenceNumber indexed_through_ = 0;
};

}  // namespace factstr::sqlite
