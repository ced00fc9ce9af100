// The key tail: the facts after key_index_state.keys_indexed_through, which the posting lists
// do not cover yet, kept per process as an in-memory map from key (payload member or event
// type) to ascending sequence numbers, built from the log. A writer folds the tail into the
// posting lists once it holds index_batch facts; any process may, the transaction makes it
// happen once. Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "factstr/database/sqlite_connection.hpp"
#include "factstr/internal/evaluation.hpp"
#include "type_cache.hpp"

namespace factstr::sqlite {

// Key hash (payload member or event type) -> the sequence numbers of the facts carrying it,
// ascending.
using KeyMap = std::unordered_map<std::uint64_t, std::vector<SequenceNumber>>;

// Reads what a snapshot says of the indexed part: keys_indexed_through and the head.
SequenceNumber indexed_through_on(Connection& db);
SequenceNumber head_on(Connection& db);

class KeyTail {
  public:
    // Facts after indexed_through that may carry a key, as seen from a snapshot ending at
    // `end`: the map's entries (ascending), plus ranges the map does not cover (another
    // snapshot's fold, or facts committed since) whose every fact is a candidate.
    struct Candidates {
        std::vector<SequenceNumber> sequence_numbers;                        // ascending
        std::vector<std::pair<SequenceNumber, SequenceNumber>> scan_ranges;  // (low, high]
    };

    // Brings the map to cover (indexed_through, end] from `db`'s snapshot. Call only with
    // committed data in view.
    void refresh(Connection& db, SequenceNumber indexed_through, SequenceNumber end,
                 TypeCache& types);
    // A committed group extends the map directly, without reading it back, when the map
    // covered everything up to `committed_before`.
    void add_committed(const std::vector<AcceptedWrite>& writes, SequenceNumber committed_before,
                       SequenceNumber head);
    // Only entries above `above`, and of those the newest `newest`.
    Candidates candidates(std::uint64_t key, SequenceNumber indexed_through, SequenceNumber end,
                          SequenceNumber above = 0, std::size_t newest = SIZE_MAX);
    // Roughly how many facts in (low, high] after indexed_through may carry `key`.
    std::uint64_t count(std::uint64_t key, SequenceNumber indexed_through, SequenceNumber low,
                        SequenceNumber high);
    // Folds the tail into the posting lists in one write transaction on `db` once it is
    // `index_batch` facts long. Throws what SQLite throws (the transaction is rolled back).
    void fold_if_due(Connection& db, SequenceNumber index_batch, TypeCache& types);

  private:
    struct Slice {
        const SequenceNumber* first = nullptr;
        const SequenceNumber* last = nullptr;
        std::vector<std::pair<SequenceNumber, SequenceNumber>> uncovered;  // (low, high]
    };
    // What the map says of `key` after indexed_through, up to `end`: its entries above
    // `above` (found by binary search: a type's list holds up to index_batch entries) and the
    // ranges the map does not cover. Call with mutex_ held.
    Slice slice(std::uint64_t key, SequenceNumber indexed_through, SequenceNumber end,
                SequenceNumber above) const;

    std::mutex mutex_;
    SequenceNumber base_ = 0;  // keys_indexed_through when the map was started
    SequenceNumber seen_ = 0;  // the map covers (base_, seen_]
    KeyMap keys_;
};

}  // namespace factstr::sqlite
