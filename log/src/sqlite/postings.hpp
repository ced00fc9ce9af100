// The posting-list codec of payload_postings: a key's ascending sequence numbers as LEB128
// deltas, at most kPostingBytes per row, so that a row stays on its B-tree page.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "factstr/database/sqlite_connection.hpp"
#include "factstr/errors.hpp"
#include "factstr/types.hpp"
#include "statements.hpp"

namespace factstr::sqlite {

// The largest encoded posting row: with its key columns it stays under SQLite's largest
// local payload of an index B-tree cell on a 4 KiB page (1002 bytes), so no overflow pages.
inline constexpr std::size_t kPostingBytes = 960;

// Decodes a posting row: its ascending sequence numbers, appended to `out`. False when the
// bytes are not a posting row.
bool decode_postings(std::string_view bytes, std::vector<SequenceNumber>& out);

// Adds `sequences` (ascending, all above what the index holds for `key`) to the key's
// posting rows: the newest row is extended while it has room, then new rows follow. Call
// inside a write transaction.
void add_postings(Connection& db, std::int64_t key, const std::vector<SequenceNumber>& sequences);

// Calls fn(sequence_number) for the facts in (low, high] that the key index lists under
// `key`, ascending or descending, until fn returns false. Throws
// StoreError(corrupt_database) for a row that does not decode.
template <class Fn>
void for_each_indexed(Connection& db, std::int64_t key, SequenceNumber low, SequenceNumber high,
                      bool descending, Fn&& fn) {
    if (low >= high) return;
    std::vector<SequenceNumber> sequences;
    Resetting rows(db.statement(descending ? kPostingsDesc : kPostingsAsc));
    rows->bind(1, key).bind(2, static_cast<std::int64_t>(low));
    if (descending) rows->bind(3, static_cast<std::int64_t>(high));
    while (rows->step()) {
        sequences.clear();
        if (!decode_postings(rows->blob(0), sequences))
            throw StoreError(ErrorCode::corrupt_database,
                             "sqlite:" + db.path() + ": a payload_postings row of key " +
                                 std::to_string(key) + " does not decode");
        if (descending) {
            for (auto it = sequences.rbegin(); it != sequences.rend(); ++it) {
                if (*it > high) continue;
                if (*it <= low || !fn(*it)) return;
            }
        } else {
            for (SequenceNumber seq : sequences) {
                if (seq <= low) continue;
                if (seq > high || !fn(seq)) return;
            }
        }
    }
}

}  // namespace factstr::sqlite
