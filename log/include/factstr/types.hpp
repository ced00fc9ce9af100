// The FACTSTR contract types (DESIGN.md §1): what goes into the log, what comes out of it,
// and how a query selects facts. Plain values; no behaviour beyond construction.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace factstr {

// Global position of a fact in the log. Starts at 1, grows by exactly one per fact.
using SequenceNumber = std::uint64_t;

// Recorded time of a fact (UTC, microsecond resolution). Informational, never the ordering key.
using Timestamp = std::chrono::sys_time<std::chrono::microseconds>;

// A fact to be appended. `payload` is JSON text (normally an object); it is validated and
// stored in compact form.
struct NewEvent {
    std::string event_type;
    std::string payload;
};

// A committed fact as read back from the log. `payload` is compact JSON text.
struct EventRecord {
    SequenceNumber sequence_number = 0;
    Timestamp occurred_at{};
    std::string event_type;
    std::string payload;

    friend bool operator==(const EventRecord&, const EventRecord&) = default;
};

// One alternative of a query. A missing part is unconstrained; an explicitly empty list
// matches nothing. Inside a filter, event types are ORed, payload predicates are ORed, and
// the type part and the payload part are ANDed.
//
// A payload predicate is JSON text matched as a recursive subset of the payload: scalars
// are equal (numbers by numeric value), objects match when every predicate key matches,
// arrays match when every predicate element matches some payload element.
struct EventFilter {
    std::optional<std::vector<std::string>> event_types;
    std::optional<std::vector<std::string>> payload_predicates;
};

// Filters are ORed; missing or empty `filters` means every fact. `min_sequence_number` is an
// exclusive read cursor: it narrows the returned rows only, never the context version.
struct EventQuery {
    std::optional<std::vector<EventFilter>> filters;
    std::optional<SequenceNumber> min_sequence_number;
};

struct QueryResult {
    std::vector<EventRecord> event_records;
    // Sequence number of the last returned record, or none when nothing was returned.
    std::optional<SequenceNumber> last_returned_sequence_number;
    // Highest sequence number among ALL facts matching the filters, ignoring
    // min_sequence_number; none when nothing matches. Pass it to append_if.
    std::optional<SequenceNumber> current_context_version;
};

// The consecutive range one append received.
struct AppendResult {
    SequenceNumber first_sequence_number = 0;
    SequenceNumber last_sequence_number = 0;
    std::uint64_t committed_count = 0;

    friend bool operator==(const AppendResult&, const AppendResult&) = default;
};

// The normal "someone else changed your context" outcome of append_if. Nothing was written.
struct ConditionalAppendConflict {
    std::optional<SequenceNumber> expected_context_version;
    std::optional<SequenceNumber> actual_context_version;

    friend bool operator==(const ConditionalAppendConflict&,
                           const ConditionalAppendConflict&) = default;
};

// Outcome of append_if: exactly one of an AppendResult or a ConditionalAppendConflict.
class [[nodiscard]] AppendIfResult {
  public:
    AppendIfResult(AppendResult committed) : outcome_(committed) {}
    AppendIfResult(ConditionalAppendConflict conflict) : outcome_(conflict) {}

    bool committed() const { return std::holds_alternative<AppendResult>(outcome_); }
    explicit operator bool() const { return committed(); }
    // The committed range; nullptr on conflict.
    const AppendResult* append_result() const { return std::get_if<AppendResult>(&outcome_); }
    // The conflict; nullptr when committed.
    const ConditionalAppendConflict* conflict() const {
        return std::get_if<ConditionalAppendConflict>(&outcome_);
    }

  private:
    std::variant<AppendResult, ConditionalAppendConflict> outcome_;
};

// One committed append as seen by a reader: the facts of that append that matched the
// reader's filter (never empty) and the last sequence number of the whole append.
struct CommittedBatch {
    SequenceNumber last_sequence_number = 0;
    std::vector<EventRecord> records;
};

// A page of committed batches, oldest first (Store::read_page, Store::stream_pages).
struct BatchPage {
    std::vector<CommittedBatch> batches;
    // Every fact up to here was examined; a reader may move its position here even when
    // no batch matched.
    SequenceNumber scanned_through = 0;
};

// Name and position of a durable stream's cursor.
struct DurableStream {
    std::string name;
};

struct DurableCursorInfo {
    std::string name;
    SequenceNumber position = 0;  // last fully handled sequence number (0 = nothing yet)
    std::string query_json;       // the query registered under this name ("{}" = all facts)
};

}  // namespace factstr
