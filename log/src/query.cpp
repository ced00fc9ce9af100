#include "factstr/internal/compiled_query.hpp"

#include <simdjson.h>

#include <algorithm>

#include "factstr/errors.hpp"

namespace factstr {
namespace {

[[noreturn]] void invalid_query(const std::string& message) {
    throw InvalidInput(ErrorCode::invalid_query, "invalid query: " + message);
}

CompiledPredicate compile_predicate(const std::string& text, std::size_t filter_index,
                                    std::size_t predicate_index) {
    CompiledPredicate predicate;
    predicate.value =
        json::Value::parse(text, "payload predicate " + std::to_string(predicate_index) +
                                     " of filter " + std::to_string(filter_index));
    predicate.text = json::to_json(predicate.value);
    if (predicate.value.kind == json::Value::Kind::object) {
        for (const auto& [key, member] : predicate.value.members)
            if (json::is_indexable_scalar(member))
                predicate.index_keys.push_back(json::index_key(key, member));
    }
    return predicate;
}

}  // namespace

bool CompiledFilter::matches_type(std::string_view event_type) const {
    if (!event_types) return true;
    return std::find(event_types->begin(), event_types->end(), event_type) != event_types->end();
}

bool CompiledFilter::matches(std::string_view event_type,
                             const simdjson::dom::element& payload) const {
    if (matches_nothing() || !matches_type(event_type)) return false;
    if (!predicates) return true;
    for (const CompiledPredicate& predicate : *predicates)
        if (json::subset_match(predicate.value, payload)) return true;
    return false;
}

CompiledQuery::CompiledQuery() = default;

CompiledQuery::CompiledQuery(const EventQuery& query)
    : min_sequence_number_(query.min_sequence_number) {
    if (query.filters) {
        filters_.reserve(query.filters->size());
        for (std::size_t f = 0; f < query.filters->size(); ++f) {
            const EventFilter& filter = (*query.filters)[f];
            CompiledFilter compiled;
            compiled.event_types = filter.event_types;
            if (filter.payload_predicates) {
                compiled.predicates.emplace();
                for (std::size_t p = 0; p < filter.payload_predicates->size(); ++p)
                    compiled.predicates->push_back(
                        compile_predicate((*filter.payload_predicates)[p], f, p));
            }
            filters_.push_back(std::move(compiled));
        }
    }
}

std::string CompiledQuery::json() const {
    // Canonical JSON form, rebuilt from compacted predicates.
    EventQuery canonical;
    canonical.min_sequence_number = min_sequence_number_;
    if (!filters_.empty()) {
        canonical.filters.emplace();
        for (const CompiledFilter& f : filters_) {
            EventFilter out;
            out.event_types = f.event_types;
            if (f.predicates) {
                out.payload_predicates.emplace();
                for (const auto& p : *f.predicates)
                    out.payload_predicates->push_back(p.text);
            }
            canonical.filters->push_back(std::move(out));
        }
    }
    return to_json(canonical);
}

bool CompiledQuery::matches(std::string_view event_type, std::string_view compact_payload,
                            bool padded) const {
    if (filters_.empty()) return true;
    simdjson::dom::element payload;
    bool parsed = false;
    for (const CompiledFilter& filter : filters_) {
        if (filter.matches_nothing() || !filter.matches_type(event_type)) continue;
        if (!filter.predicates) return true;
        if (!parsed) {
            payload = json::parse_stored(compact_payload, padded);
            parsed = true;
        }
        if (filter.matches(event_type, payload)) return true;
    }
    return false;
}

void validate(const EventQuery& query) {
    CompiledQuery compiled(query);
}

EventQuery parse_event_query(std::string_view json_text) {
    json::Value root = json::Value::parse(json_text, "query");
    if (root.kind != json::Value::Kind::object) invalid_query("the query must be a JSON object");
    EventQuery query;
    for (const auto& [key, value] : root.members) {
        if (key == "filters") {
            if (value.kind == json::Value::Kind::null) continue;
            if (value.kind != json::Value::Kind::array)
                invalid_query("'filters' must be an array of filter objects");
            query.filters.emplace();
            for (std::size_t f = 0; f < value.items.size(); ++f) {
                const json::Value& filter = value.items[f];
                std::string where = "filters[" + std::to_string(f) + "]";
                if (filter.kind != json::Value::Kind::object)
                    invalid_query(where + " must be an object");
                EventFilter out;
                for (const auto& [fkey, fvalue] : filter.members) {
                    if (fkey == "event_types") {
                        if (fvalue.kind == json::Value::Kind::null) continue;
                        if (fvalue.kind != json::Value::Kind::array)
                            invalid_query(where + ".event_types must be an array of strings");
                        out.event_types.emplace();
                        for (const json::Value& t : fvalue.items) {
                            if (t.kind != json::Value::Kind::string)
                                invalid_query(where + ".event_types must be an array of strings");
                            out.event_types->push_back(t.string);
                        }
                    } else if (fkey == "payload_predicates") {
                        if (fvalue.kind == json::Value::Kind::null) continue;
                        if (fvalue.kind != json::Value::Kind::array)
                            invalid_query(where + ".payload_predicates must be an array");
                        out.payload_predicates.emplace();
                        for (const json::Value& p : fvalue.items)
                            out.payload_predicates->push_back(json::to_json(p));
                    } else {
                        invalid_query(where + " has an unknown field '" + fkey +
                                      "' (expected event_types, payload_predicates)");
                    }
                }
                query.filters->push_back(std::move(out));
            }
        } else if (key == "min_sequence_number") {
            if (value.kind == json::Value::Kind::null) continue;
            if (value.kind == json::Value::Kind::int64 && value.int64 >= 0)
                query.min_sequence_number = static_cast<SequenceNumber>(value.int64);
            else if (value.kind == json::Value::Kind::uint64)
                query.min_sequence_number = value.uint64;
            else
                invalid_query("'min_sequence_number' must be a non-negative integer");
        } else {
            invalid_query("unknown field '" + key + "' (expected filters, min_sequence_number)");
        }
    }
    return query;
}

std::string to_json(const EventFilter& filter) {
    std::string out = "{";
    if (filter.event_types) {
        out += "\"event_types\":[";
        for (std::size_t i = 0; i < filter.event_types->size(); ++i) {
            if (i) out += ',';
            json::append_quoted(out, (*filter.event_types)[i]);
        }
        out += ']';
    }
    if (filter.payload_predicates) {
        if (filter.event_types) out += ',';
        out += "\"payload_predicates\":[";
        for (std::size_t i = 0; i < filter.payload_predicates->size(); ++i) {
            if (i) out += ',';
            out += (*filter.payload_predicates)[i];
        }
        out += ']';
    }
    out += '}';
    return out;
}

std::string to_json(const EventQuery& query) {
    std::string out = "{";
    bool first = true;
    if (query.filters) {
        out += "\"filters\":[";
        for (std::size_t f = 0; f < query.filters->size(); ++f) {
            if (f) out += ',';
            out += to_json((*query.filters)[f]);
        }
        out += ']';
        first = false;
    }
    if (query.min_sequence_number) {
        if (!first) out += ',';
        out += "\"min_sequence_number\":" + std::to_string(*query.min_sequence_number);
    }
    out += '}';
    return out;
}

}  // namespace factstr
