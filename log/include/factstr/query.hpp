// The JSON form of an EventQuery (the CLI's --query, stored durable streams, the Node
// binding). The compiled form engines evaluate is internal (factstr/internal/compiled_query.hpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "factstr/types.hpp"

namespace factstr {

// JSON form of a query, as used by the CLI, stored durable streams and the Node binding:
// {"filters":[{"event_types":["a"],"payload_predicates":[{"k":1}]}],"min_sequence_number":3}
// Throws InvalidInput(invalid_query) naming the offending field.
EventQuery parse_event_query(std::string_view json_text);
std::string to_json(const EventQuery& query);
// The check every query runs (the same compilation): throws InvalidInput(invalid_query /
// invalid_json) naming the filter and predicate that is wrong. Pure; thread-safe.
void validate(const EventQuery& query);
// One filter in the same form: {"event_types":[…],"payload_predicates":[…]}.
std::string to_json(const EventFilter& filter);

}  // namespace factstr
