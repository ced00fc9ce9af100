// Reading a fact's payload fields as the cells of a plan's columns and keys: the paths of
// dotted field names, numbers checked for the column's type, and the key of a fact's row. Used
// by the plan's compilation (plan.cpp) and by the fold (fold.cpp), on every fact: defined
// here, inline.
#pragma once

#include <simdjson.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "factstr/json.hpp"
#include "plan.hpp"

namespace factstr::projections::detail {

using simdjson::dom::element;
using simdjson::dom::element_type;

inline std::vector<std::string> split_path(const std::string& field) {
    std::vector<std::string> path;
    std::size_t start = 0;
    while (true) {
        std::size_t dot = field.find('.', start);
        path.push_back(field.substr(start, dot - start));
        if (dot == std::string::npos) break;
        start = dot + 1;
    }
    return path;
}

inline std::optional<element> at_path(element node, const std::vector<std::string>& path) {
    for (const std::string& part : path) {
        simdjson::dom::object object;
        if (node.get_object().get(object)) return std::nullopt;
        if (object.at_key(part).get(node)) return std::nullopt;
    }
    if (node.type() == element_type::NULL_VALUE) return std::nullopt;
    return node;
}

inline std::string describe(const EventRecord& record) {
    return "fact " + std::to_string(record.sequence_number) + " (" + record.event_type + ")";
}

inline std::string element_json(element value) {
    return simdjson::minify(value);
}

inline std::int64_t integer_of(element value, const EventRecord& record, const std::string& field) {
    switch (value.type()) {
        case element_type::INT64:
            return value.get_int64().value();
        case element_type::UINT64: {
            std::uint64_t u = value.get_uint64().value();
            if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                return static_cast<std::int64_t>(u);
            break;
        }
        case element_type::DOUBLE: {
            double d = value.get_double().value();
            if (std::trunc(d) == d && std::fabs(d) < 9.2e18) return static_cast<std::int64_t>(d);
            break;
        }
        default:
            break;
    }
    throw FoldFailure(record.sequence_number, describe(record) + ": field '" + field + "' is " +
                                                  element_json(value) + ", not an integer");
}

inline double real_of(element value, const EventRecord& record, const std::string& field) {
    switch (value.type()) {
        case element_type::INT64:
            return static_cast<double>(value.get_int64().value());
        case element_type::UINT64:
            return static_cast<double>(value.get_uint64().value());
        case element_type::DOUBLE:
            return value.get_double().value();
        default:
            throw FoldFailure(record.sequence_number, describe(record) + ": field '" + field +
                                                          "' is " + element_json(value) +
                                                          ", not a number");
    }
}

// A payload value as a cell of `type`; nullopt when the value does not fit the type.
inline std::optional<Cell> cell_of(element value, ColumnType type) {
    switch (type) {
        case ColumnType::text:
            if (value.type() == element_type::STRING)
                return Cell(std::string(value.get_string().value()));
            return Cell(element_json(value));
        case ColumnType::boolean:
            if (value.type() == element_type::BOOL) return Cell(value.get_bool().value());
            return std::nullopt;
        case ColumnType::real:
            if (value.is_number()) return Cell(value.get_double().value());
            return std::nullopt;
        case ColumnType::integer:
            if (value.type() == element_type::INT64) return Cell(value.get_int64().value());
            if (value.type() == element_type::UINT64 &&
                value.get_uint64().value() <=
                    static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                return Cell(static_cast<std::int64_t>(value.get_uint64().value()));
            if (value.type() == element_type::DOUBLE) {
                double d = value.get_double().value();
                if (std::trunc(d) == d && std::fabs(d) < 9.2e18)
                    return Cell(static_cast<std::int64_t>(d));
            }
            return std::nullopt;
    }
    return std::nullopt;
}

// One key cell in the form key_text uses: s<text>, i<number>, bt/bf, n.
inline void append_key_text(std::string& out, const Cell& cell) {
    if (const auto* s = std::get_if<std::string>(&cell)) {
        out += 's';
        out += *s;
    } else if (const auto* i = std::get_if<std::int64_t>(&cell)) {
        out += 'i';
        out += std::to_string(*i);
    } else if (const auto* b = std::get_if<bool>(&cell)) {
        out += *b ? "bt" : "bf";
    } else {
        out += 'n';
    }
}

struct KeyPlan {
    std::vector<KeyField> fields;
    std::vector<std::vector<std::string>> paths;
    bool global = false;  // no key fields: one row

    explicit KeyPlan(const std::vector<KeyField>& key) : fields(key) {
        if (fields.empty()) {
            global = true;
            fields.push_back({"", ColumnType::integer, "row_id"});
        }
        for (const KeyField& field : fields)
            paths.push_back(split_path(field.field));
    }

    std::vector<Cell> extract(element payload, const EventRecord& record) const {
        if (global) return {Cell(std::int64_t{1})};
        std::vector<Cell> key;
        key.reserve(fields.size());
        for (std::size_t i = 0; i < fields.size(); ++i)
            key.push_back(cell(payload, record, i));
        return key;
    }

    // The key's text (as key_text(extract(…)) gives it) into `out`, without allocating in the
    // common case of string keys. Throws like extract.
    void text_of(element payload, const EventRecord& record, std::string& out) const {
        out.clear();
        if (global) {
            append_key_text(out, Cell(std::int64_t{1}));
            return;
        }
        for (std::size_t i = 0; i < fields.size(); ++i) {
            if (i) out += '\x1f';
            auto value = at_path(payload, paths[i]);
            if (value && fields[i].type == ColumnType::text &&
                value->type() == element_type::STRING) {
                out += 's';
                out += value->get_string().value();
            } else {
                append_key_text(out, cell(payload, record, i));
            }
        }
    }

  private:
    Cell cell(element payload, const EventRecord& record, std::size_t i) const {
        auto value = at_path(payload, paths[i]);
        if (!value)
            throw FoldFailure(record.sequence_number,
                              describe(record) + " has no key field '" + fields[i].field + "'");
        auto cell = cell_of(*value, fields[i].type);
        if (!cell || value->type() == element_type::OBJECT || value->type() == element_type::ARRAY)
            throw FoldFailure(record.sequence_number, describe(record) + ": key field '" +
                                                          fields[i].field + "' is " +
                                                          element_json(*value) + ", not a " +
                                                          to_string(fields[i].type) + " key");
        return std::move(*cell);
    }
};

}  // namespace factstr::projections::detail
