// Private to log/src/json/: what more than one of its files uses. Numbers are compared
// (match.cpp) and hashed (index_keys.cpp) through one canonical form; invalid input is
// reported one way (parse_compact.cpp, envelope.cpp); and one rule says which members of a
// payload's top level are indexed (index_keys.cpp, parse_compact.cpp). The number functions
// and add_index_key are inline: they sit on the matching, hashing and validation paths.
#pragma once

#include <simdjson.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

#include "factstr/json.hpp"

namespace factstr::json::detail {

[[noreturn]] void throw_invalid_json(std::string_view what, simdjson::error_code error);

// Doubles that hold an integer in int64 range compare (and hash) as that integer, so that
// 1 and 1.0 are one value.
inline bool double_as_int64(double d, std::int64_t& out) {
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return false;
    if (std::trunc(d) != d) return false;
    out = static_cast<std::int64_t>(d);
    return true;
}

struct Number {
    enum class Kind { int64, uint64, number } kind;
    std::int64_t i = 0;
    std::uint64_t u = 0;
    double d = 0;
};

inline Number canonical(Number n) {
    if (n.kind == Number::Kind::number) {
        std::int64_t i;
        if (double_as_int64(n.d, i)) return {Number::Kind::int64, i, 0, 0};
    } else if (n.kind == Number::Kind::uint64 &&
               n.u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return {Number::Kind::int64, static_cast<std::int64_t>(n.u), 0, 0};
    } else if (n.kind == Number::Kind::uint64) {
        // Beyond int64: compared and hashed through double, like JSON numbers at large.
        return {Number::Kind::number, 0, 0, static_cast<double>(n.u)};
    }
    return n;
}

inline bool numbers_equal(Number a, Number b) {
    a = canonical(a);
    b = canonical(b);
    if (a.kind != b.kind) return false;
    return a.kind == Number::Kind::int64 ? a.i == b.i : a.d == b.d;
}

inline bool number_of(const simdjson::dom::element& e, Number& out) {
    using simdjson::dom::element_type;
    switch (e.type()) {
        case element_type::INT64:
            out = {Number::Kind::int64, int64_t(e), 0, 0};
            return true;
        case element_type::UINT64:
            out = {Number::Kind::uint64, 0, uint64_t(e), 0};
            return true;
        case element_type::DOUBLE:
            out = {Number::Kind::number, 0, 0, double(e)};
            return true;
        default:
            return false;
    }
}

inline bool number_of(const Value& v, Number& out) {
    switch (v.kind) {
        case Value::Kind::int64:
            out = {Number::Kind::int64, v.int64, 0, 0};
            return true;
        case Value::Kind::uint64:
            out = {Number::Kind::uint64, 0, v.uint64, 0};
            return true;
        case Value::Kind::number:
            out = {Number::Kind::number, 0, 0, v.number};
            return true;
        default:
            return false;
    }
}

// The one rule for which members of a payload's top level are indexed: the scalars. Shared by
// validation (prepare_payload) and by stored payloads read back (index_keys_of), which must
// agree key for key.
inline void add_index_key(std::vector<std::uint64_t>& out, std::string_view key,
                          const simdjson::dom::element& value) {
    using simdjson::dom::element_type;
    const auto type = value.type();
    if (type != element_type::OBJECT && type != element_type::ARRAY)
        out.push_back(index_key(key, value));
}

}  // namespace factstr::json::detail
