// The payload predicate: a recursive subset match, written once for every backend.
#include <simdjson.h>

#include <string_view>

#include "factstr/json.hpp"
#include "shared.hpp"

namespace factstr::json {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

}  // namespace

bool subset_match(const Value& predicate, const element& payload) {
    switch (predicate.kind) {
        case Value::Kind::null:
            return payload.is_null();
        case Value::Kind::boolean:
            return payload.type() == element_type::BOOL && bool(payload) == predicate.boolean;
        case Value::Kind::string:
            return payload.type() == element_type::STRING &&
                   std::string_view(payload) == predicate.string;
        case Value::Kind::int64:
        case Value::Kind::uint64:
        case Value::Kind::number: {
            detail::Number a, b;
            return detail::number_of(predicate, a) && detail::number_of(payload, b) &&
                   detail::numbers_equal(a, b);
        }
        case Value::Kind::object: {
            if (payload.type() != element_type::OBJECT) return false;
            simdjson::dom::object object(payload);
            for (const auto& [key, expected] : predicate.members) {
                element actual;
                if (object.at_key(key).get(actual)) return false;
                if (!subset_match(expected, actual)) return false;
            }
            return true;
        }
        case Value::Kind::array: {
            if (payload.type() != element_type::ARRAY) return false;
            simdjson::dom::array array(payload);
            for (const Value& expected : predicate.items) {
                bool found = false;
                for (element actual : array) {
                    if (subset_match(expected, actual)) {
                        found = true;
                        break;
                    }
                }
                if (!found) return false;
            }
            return true;
        }
    }
    return false;
}

}  // namespace factstr::json
