// The contract's evaluation, written once over the engine port (backend.hpp): what a query
// returns and its two versions, the context version append_if checks, batch paging, and the
// append_if decision of a group. Every candidate an engine hands over is verified here with
// the one matcher (CompiledQuery::matches); engines only narrow.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "factstr/internal/backend.hpp"

namespace factstr {

// The facts matching `query` after its min_sequence_number, ascending — at most `limit` of
// them — with last_returned_sequence_number and current_context_version (the newest match
// of the whole log, ignoring min_sequence_number and the limit). Costs about the number of
// candidates the engine hands over, plus one newest-first read when nothing was returned or
// the limit cut the result.
QueryResult evaluate_query(LogView& view, const CompiledQuery& query, std::size_t limit = SIZE_MAX);

// The newest fact matching `query` at or below `at_most` (none when nothing matches): the
// context version. Reads each candidate source newest first and stops at its first match.
std::optional<SequenceNumber> context_version(LogView& view, const CompiledQuery& query,
                                              SequenceNumber at_most);

// Committed batches with facts after `after`, oldest first, each reduced to the facts
// matching `filter`; batches without a matching fact are left out. Stops once about
// `max_facts` facts were collected, never inside a batch, and reads at most a window of
// max(16 × max_facts, 65536) sequence numbers (max_facts for an unfiltered read), widened to
// the end of the batch it cuts into; scanned_through says how far the page examined.
BatchPage read_page(LogView& view, SequenceNumber after, const CompiledQuery& filter,
                    std::size_t max_facts);

// A request of a group that the decision accepted, and where its range starts.
struct AcceptedWrite {
    WriteRequest* request;
    SequenceNumber first_sequence_number;
};

// The append_if decision for a group committed on top of `head` in one transaction, in
// order: an append_if's actual version is the newest match among the facts accepted earlier
// in the group, else the newest match in `view` at or below `head`. Conflicts go into the
// requests' results; accepted requests get their consecutive ranges (their results say so
// provisionally: an engine whose write then fails replaces them with the error).
std::vector<AcceptedWrite> decide_group(LogView& view, SequenceNumber head,
                                        const std::vector<WriteRequest*>& group);

// Microseconds since 1970 (UTC) on Env::system()'s wall clock: the occurred_at of facts
// appended to memory and PostgreSQL (SQLite reads its store's Env). One clock read.
std::int64_t now_micros();

}  // namespace factstr
