// A query compiled for evaluation: predicates parsed once, index keys of their top-level
// scalars computed once. Engines use it to pick candidates; the shared evaluation verifies
// every candidate with matches(). Internal: users pass an EventQuery to factstr::Store.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "factstr/json.hpp"
#include "factstr/query.hpp"
#include "factstr/types.hpp"

namespace simdjson::dom {
class element;
}

namespace factstr {

struct CompiledPredicate {
    std::string text;  // compact JSON text of the predicate
    json::Value value;
    // Index keys of the predicate's top-level scalar members. A fact can only match when it
    // carries every one of them; empty when the predicate is not an object with scalars.
    std::vector<std::uint64_t> index_keys;
};

struct CompiledFilter {
    std::optional<std::vector<std::string>> event_types;
    std::optional<std::vector<CompiledPredicate>> predicates;

    // An explicitly empty list makes the filter match nothing.
    bool matches_nothing() const {
        return (event_types && event_types->empty()) || (predicates && predicates->empty());
    }
    bool matches_type(std::string_view event_type) const;
    // The full check of one fact whose payload is already parsed.
    bool matches(std::string_view event_type, const simdjson::dom::element& payload) const;
};

class CompiledQuery {
  public:
    // Validates and compiles. Throws InvalidInput(invalid_query / invalid_json) naming the
    // filter and predicate that is wrong.
    explicit CompiledQuery(const EventQuery& query);
    // A query that matches every fact.
    CompiledQuery();

    // True when there are no filters: every fact matches.
    bool matches_all() const { return filters_.empty(); }
    const std::vector<CompiledFilter>& filters() const { return filters_; }
    std::optional<SequenceNumber> min_sequence_number() const { return min_sequence_number_; }

    // The full check of one fact against the filters (min_sequence_number is not applied).
    // Parses the payload only when a predicate needs it.
    // `padded`: see json::parse_stored.
    bool matches(std::string_view event_type, std::string_view compact_payload,
                 bool padded = false) const;

    // The query in its JSON form (see parse_event_query).
    std::string json() const;

  private:
    std::vector<CompiledFilter> filters_;
    std::optional<SequenceNumber> min_sequence_number_;
};

}  // namespace factstr
