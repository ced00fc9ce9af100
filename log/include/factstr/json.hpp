// JSON handling shared by every backend: payload validation and compaction, the payload
// predicate (recursive subset match, written once), index keys of top-level scalars, and a
// few writers for JSON output.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "factstr/types.hpp"

namespace simdjson::dom {
class element;
}

namespace factstr::json {

// A parsed JSON value, used for predicates (small, built once per query).
class Value {
  public:
    enum class Kind : std::uint8_t { null, boolean, int64, uint64, number, string, array, object };

    Kind kind = Kind::null;
    bool boolean = false;
    std::int64_t int64 = 0;
    std::uint64_t uint64 = 0;
    double number = 0;
    std::string string;
    std::vector<Value> items;                            // array elements
    std::vector<std::pair<std::string, Value>> members;  // object members, in text order

    // Parses JSON text. Throws InvalidInput(invalid_json) naming `what` on bad input.
    static Value parse(std::string_view text, std::string_view what);
    static Value from_element(const simdjson::dom::element& element);
};

// Compact JSON text of a value (numbers in shortest round-trip form).
std::string to_json(const Value& value);

// True when `predicate` is a recursive subset of `payload` (DESIGN.md §1): scalars equal
// (numbers by numeric value, so 1 equals 1.0), objects match when every predicate key
// matches the payload's value at that key, arrays match when every predicate element
// matches some payload element (order-free, extra payload elements allowed).
bool subset_match(const Value& predicate, const simdjson::dom::element& payload);

// Stable 64-bit hash of a top-level (key, scalar value) pair, equal for equal values
// (1 and 1.0 hash alike). Stored in persistent indexes: never change the algorithm
// without a schema version bump.
std::uint64_t index_key(std::string_view key, const simdjson::dom::element& scalar);
std::uint64_t index_key(std::string_view key, const Value& scalar);
bool is_indexable_scalar(const Value& value);

// Stable 64-bit key of an event type in the same space as index_key: the bytes hashed start
// with 0xFF, which no payload key (valid UTF-8) can, so a type never shares a key with a
// payload member. Stored in persistent indexes, like index_key.
std::uint64_t type_index_key(std::string_view event_type);

// A payload after validation: compact JSON text plus the index keys of its top-level
// scalar members (at most one per member).
struct PreparedPayload {
    std::string compact;
    std::vector<std::uint64_t> index_keys;
};

// Validates `text` with simdjson and compacts it. Throws InvalidInput(invalid_json) with
// `what` (e.g. "payload of event 3") in the message.
PreparedPayload prepare_payload(std::string text, std::string_view what);

// The index keys of a stored payload's top-level scalars (as in PreparedPayload).
std::vector<std::uint64_t> index_keys_of(std::string_view compact);

// Parses `compact` payload text (already validated) with a per-thread parser. The element is
// valid until the next call on the same thread. `padded`: at least kParsePadding readable
// bytes follow the text, so it is parsed in place without a copy.
simdjson::dom::element parse_stored(std::string_view compact, bool padded = false);
inline constexpr std::size_t kParsePadding = 64;

// The text of the value at `key` in the JSON object `object_text` (its first such member),
// exactly as written (without the whitespace around it), or nothing when `object_text` is
// not an object or has no such member. For readers of envelopes such as
// {"event_type":…,"payload":…} that pass the payload on as it was given. Validate the text
// first (Value::parse): this reads only what it needs, and throws InvalidInput(invalid_json)
// naming `what` for the malformations it meets, content after the object among them.
std::optional<std::string> member_text(std::string_view object_text, std::string_view key,
                                       std::string_view what);

// The text of each element of the JSON array `array_text`, exactly as written (views into
// it, without the whitespace around each). `padded`: kParsePadding readable bytes follow the
// text. Throws InvalidInput(invalid_json) naming `what` when the text is not a JSON array or
// has content after it; the elements themselves are validated by whoever parses them.
std::vector<std::string_view> item_texts(std::string_view array_text, bool padded,
                                         std::string_view what);

// Appends `text` as a JSON string literal (quoted, escaped) to `out`.
void append_quoted(std::string& out, std::string_view text);

// RFC 3339 UTC with microseconds, e.g. 2026-11-23T22:26:32.123456Z.
std::string format_rfc3339(Timestamp at);
// The same text, appended to `out` (no temporary string; for record encoders).
void append_rfc3339(std::string& out, Timestamp at);
// Parses RFC 3339 (any offset, fraction up to nanoseconds). Throws InvalidInput.
Timestamp parse_rfc3339(std::string_view text);

// An EventRecord as one compact JSON object with sequence_number, occurred_at,
// event_type and payload.
std::string record_to_json(const EventRecord& record);

}  // namespace factstr::json
