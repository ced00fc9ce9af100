// The canonical JSON form of a declaration (to_json) and its fingerprint: default columns
// filled in and predicates compacted, so that equal declarations give equal text.
#include <xxhash.h>

#include <cstdio>

#include "factstr/json.hpp"
#include "factstr/projections.hpp"
#include "factstr/query.hpp"
#include "plan.hpp"

namespace factstr::projections {
namespace {

using detail::default_column;
using json::Value;

void write_key(std::string& out, const std::vector<KeyField>& key) {
    out += '[';
    for (std::size_t i = 0; i < key.size(); ++i) {
        if (i) out += ',';
        out += "{\"field\":";
        json::append_quoted(out, key[i].field);
        out += ",\"type\":";
        json::append_quoted(out, to_string(key[i].type));
        out += ",\"column\":";
        json::append_quoted(out,
                            key[i].column.empty() ? default_column(key[i].field) : key[i].column);
        out += '}';
    }
    out += ']';
}

std::string number_text(double value) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.17g", value);
    return json::to_json(Value::parse(buffer, "number"));
}

// Predicates in canonical (compact) form, so that spacing never changes a fingerprint.
std::string canonical_filter(const EventFilter& filter) {
    EventFilter copy = filter;
    if (copy.payload_predicates)
        for (std::string& predicate : *copy.payload_predicates)
            predicate = json::to_json(Value::parse(predicate, "payload predicate"));
    return to_json(copy);
}

}  // namespace

std::string to_json(const Projection& projection) {
    std::string out = "{\"name\":";
    json::append_quoted(out, projection.name);
    out += ",\"key\":";
    write_key(out, projection.key);
    out += ",\"computations\":[";
    for (std::size_t i = 0; i < projection.computations.size(); ++i) {
        const Computation& c = projection.computations[i];
        if (i) out += ',';
        out += "{\"column\":";
        json::append_quoted(out, c.column);
        if (c.filter) out += ",\"filter\":" + canonical_filter(*c.filter);
        std::visit(
            [&](const auto& kind) {
                using K = std::decay_t<decltype(kind)>;
                if constexpr (std::is_same_v<K, Count>) {
                    out += ",\"kind\":\"count\"";
                } else if constexpr (std::is_same_v<K, Summation>) {
                    out += ",\"kind\":\"sum\",\"field\":";
                    json::append_quoted(out, kind.field);
                    out += std::string(",\"type\":\"") + to_string(kind.type) + "\"";
                } else if constexpr (std::is_same_v<K, WeightedSummation>) {
                    out += std::string(",\"kind\":\"weighted_sum\",\"type\":\"") +
                           to_string(kind.type) + "\",\"terms\":[";
                    for (std::size_t t = 0; t < kind.terms.size(); ++t) {
                        const WeightedTerm& term = kind.terms[t];
                        if (t) out += ',';
                        out += "{\"filter\":" + canonical_filter(term.filter) +
                               ",\"weight\":" + number_text(term.weight);
                        if (term.field) {
                            out += ",\"field\":";
                            json::append_quoted(out, *term.field);
                        } else {
                            out += ",\"constant\":" + number_text(term.constant);
                        }
                        out += '}';
                    }
                    out += ']';
                } else if constexpr (std::is_same_v<K, Average>) {
                    out += ",\"kind\":\"average\",\"field\":";
                    json::append_quoted(out, kind.field);
                } else if constexpr (std::is_same_v<K, Every> || std::is_same_v<K, Any>) {
                    out += std::is_same_v<K, Every> ? ",\"kind\":\"every\"" : ",\"kind\":\"any\"";
                    out += ",\"predicate\":" +
                           json::to_json(Value::parse(kind.predicate, "predicate"));
                    out += kind.when_empty ? ",\"when_empty\":true" : ",\"when_empty\":false";
                } else if constexpr (std::is_same_v<K, Transform>) {
                    out += ",\"kind\":\"transform\",\"key\":";
                    write_key(out, kind.key.empty() ? projection.key : kind.key);
                    out += ",\"columns\":[";
                    for (std::size_t k = 0; k < kind.columns.size(); ++k) {
                        const TransformColumn& column = kind.columns[k];
                        if (k) out += ',';
                        out += "{\"column\":";
                        json::append_quoted(out, column.column.empty()
                                                     ? default_column(column.field)
                                                     : column.column);
                        out += ",\"field\":";
                        json::append_quoted(out, column.field);
                        out += std::string(",\"type\":\"") + to_string(column.type) + "\"}";
                    }
                    out += ']';
                    if (kind.remove_on)
                        out += ",\"remove_on\":" + canonical_filter(*kind.remove_on);
                } else if constexpr (std::is_same_v<K, StateMachine>) {
                    out += ",\"kind\":\"state_machine\",\"states\":[";
                    for (std::size_t s = 0; s < kind.states.size(); ++s) {
                        if (s) out += ',';
                        json::append_quoted(out, kind.states[s]);
                    }
                    out += "],\"initial\":";
                    json::append_quoted(out, kind.initial);
                    out += ",\"transitions\":[";
                    for (std::size_t t = 0; t < kind.transitions.size(); ++t) {
                        const Transition& transition = kind.transitions[t];
                        if (t) out += ',';
                        out += "{\"from\":[";
                        for (std::size_t f = 0; f < transition.from.size(); ++f) {
                            if (f) out += ',';
                            json::append_quoted(out, transition.from[f]);
                        }
                        out += "],\"on\":" + canonical_filter(transition.on) + ",\"to\":";
                        json::append_quoted(out, transition.to);
                        out += '}';
                    }
                    out += ']';
                }
            },
            c.kind);
        out += '}';
    }
    out += "]}";
    return out;
}

std::string fingerprint(const Projection& projection) {
    const std::string canonical = to_json(projection);
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx",
                  static_cast<unsigned long long>(XXH3_64bits(canonical.data(), canonical.size())));
    return hex;
}

}  // namespace factstr::projections
