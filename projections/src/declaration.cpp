// Projection declarations: the builder, validation and default column names. Their JSON
// form is read in declaration_parse.cpp and written in declaration_json.cpp.
#include "declaration.hpp"

#include <algorithm>
#include <set>

#include "factstr/json.hpp"
#include "factstr/projections.hpp"
#include "factstr/query.hpp"
#include "plan.hpp"

namespace factstr::projections {
namespace detail {

void refuse_declaration(const std::string& where, const std::string& what) {
    throw InvalidInput(ErrorCode::invalid_declaration, where + ": " + what);
}

bool valid_identifier(std::string_view name, std::size_t max_length) {
    if (name.empty() || name.size() > max_length) return false;
    if (!(std::islower(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return std::islower(static_cast<unsigned char>(c)) ||
               std::isdigit(static_cast<unsigned char>(c)) || c == '_';
    });
}

// The column a field is stored in unless one is named: snake_case, dots as '_'
// (accountId -> account_id, address.zipCode -> address_zip_code).
std::string default_column(std::string_view field) {
    std::string column;
    for (std::size_t i = 0; i < field.size(); ++i) {
        const char c = field[i];
        if (c == '.') {
            column += '_';
        } else if (std::isupper(static_cast<unsigned char>(c))) {
            if (i > 0 && field[i - 1] != '.' &&
                !std::isupper(static_cast<unsigned char>(field[i - 1])))
                column += '_';
            column += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        } else {
            column += c;
        }
    }
    return column;
}

}  // namespace detail

using detail::default_column;
using detail::refuse_declaration;
using detail::valid_identifier;
using json::Value;
using Kind = json::Value::Kind;

const char* to_string(ColumnType type) noexcept {
    switch (type) {
        case ColumnType::integer:
            return "integer";
        case ColumnType::real:
            return "real";
        case ColumnType::text:
            return "text";
        case ColumnType::boolean:
            return "boolean";
    }
    return "unknown";
}

EventFilter on(std::vector<std::string> event_types, std::optional<std::string> payload_predicate) {
    EventFilter filter;
    filter.event_types = std::move(event_types);
    if (payload_predicate) filter.payload_predicates = std::vector{std::move(*payload_predicate)};
    return filter;
}

Projection& Projection::key_by(std::string field, ColumnType type) {
    std::string column = default_column(field);
    key.push_back({std::move(field), type, std::move(column)});
    return *this;
}
Projection& Projection::count(std::string column, EventFilter filter) {
    computations.push_back({std::move(column), std::move(filter), Count{}});
    return *this;
}
Projection& Projection::sum(std::string column, EventFilter filter, std::string field,
                            ColumnType type) {
    computations.push_back(
        {std::move(column), std::move(filter), Summation{std::move(field), type}});
    return *this;
}
Projection& Projection::weighted_sum(std::string column, std::vector<WeightedTerm> terms,
                                     ColumnType type) {
    computations.push_back(
        {std::move(column), std::nullopt, WeightedSummation{std::move(terms), type}});
    return *this;
}
Projection& Projection::average(std::string column, EventFilter filter, std::string field) {
    computations.push_back({std::move(column), std::move(filter), Average{std::move(field)}});
    return *this;
}
Projection& Projection::every(std::string column, EventFilter filter, std::string predicate,
                              bool when_empty) {
    computations.push_back(
        {std::move(column), std::move(filter), Every{std::move(predicate), when_empty}});
    return *this;
}
Projection& Projection::any(std::string column, EventFilter filter, std::string predicate,
                            bool when_empty) {
    computations.push_back(
        {std::move(column), std::move(filter), Any{std::move(predicate), when_empty}});
    return *this;
}
Projection& Projection::transform(std::string table_suffix, EventFilter filter, Transform t) {
    computations.push_back({std::move(table_suffix), std::move(filter), std::move(t)});
    return *this;
}
Projection& Projection::state_machine(std::string column, StateMachine machine) {
    computations.push_back({std::move(column), std::nullopt, std::move(machine)});
    return *this;
}

void validate(const Projection& projection) {
    const std::string where = "projection '" + projection.name + "'";
    if (!valid_identifier(projection.name, 48))
        refuse_declaration(where, "the name must match [a-z_][a-z0-9_]* (at most 48 characters)");
    if (projection.computations.empty()) refuse_declaration(where, "no computations are declared");
    std::set<std::string> columns;
    auto declare = [&](const std::string& column, const std::string& at) {
        if (!valid_identifier(column, 48))
            refuse_declaration(
                at, "column '" + column + "' must match [a-z_][a-z0-9_]* (at most 48 characters)");
        if (!columns.insert(column).second)
            refuse_declaration(at, "column '" + column + "' is declared twice");
    };
    auto check_filter = [&](const EventFilter& filter, const std::string& at) {
        try {
            CompiledQuery(EventQuery{std::vector{filter}, std::nullopt});
        } catch (const Error& e) {
            refuse_declaration(at, e.what());
        }
    };
    auto check_key = [&](const std::vector<KeyField>& key, const std::string& at,
                         std::set<std::string>& names) {
        for (const KeyField& field : key) {
            if (field.field.empty()) refuse_declaration(at, "a key field has no name");
            if (field.type == ColumnType::real)
                refuse_declaration(at, "key field '" + field.field +
                                           "' cannot be real (integer, text or boolean)");
            const std::string column =
                field.column.empty() ? default_column(field.field) : field.column;
            if (!valid_identifier(column, 48))
                refuse_declaration(at, "key column '" + column + "' must match [a-z_][a-z0-9_]*");
            if (!names.insert(column).second)
                refuse_declaration(at, "column '" + column + "' is declared twice");
        }
    };
    check_key(projection.key, where + ".key", columns);
    for (std::size_t i = 0; i < projection.computations.size(); ++i) {
        const Computation& c = projection.computations[i];
        const std::string at =
            where + ".computations[" + std::to_string(i) + "] ('" + c.column + "')";
        if (c.filter) check_filter(*c.filter, at + ".filter");
        const bool needs_filter = !std::holds_alternative<WeightedSummation>(c.kind) &&
                                  !std::holds_alternative<StateMachine>(c.kind);
        if (needs_filter && !c.filter) refuse_declaration(at, "a filter is required");
        auto numeric = [&](ColumnType type) {
            if (type != ColumnType::integer && type != ColumnType::real)
                refuse_declaration(at,
                                   std::string("a sum is integer or real, not ") + to_string(type));
        };
        auto predicate = [&](const std::string& text) {
            Value value = Value::parse(text, at + " predicate");
            if (value.kind != Kind::object)
                refuse_declaration(at, "the predicate must be a JSON object");
        };
        std::visit(
            [&](const auto& kind) {
                using K = std::decay_t<decltype(kind)>;
                if constexpr (std::is_same_v<K, Count>) {
                    declare(c.column, at);
                } else if constexpr (std::is_same_v<K, Summation>) {
                    if (kind.field.empty()) refuse_declaration(at, "'field' is empty");
                    numeric(kind.type);
                    declare(c.column, at);
                } else if constexpr (std::is_same_v<K, WeightedSummation>) {
                    numeric(kind.type);
                    if (kind.terms.empty())
                        refuse_declaration(at, "a weighted sum needs at least one term");
                    for (std::size_t t = 0; t < kind.terms.size(); ++t) {
                        check_filter(kind.terms[t].filter,
                                     at + ".terms[" + std::to_string(t) + "]");
                        if (kind.type == ColumnType::integer &&
                            (kind.terms[t].weight != static_cast<double>(static_cast<std::int64_t>(
                                                         kind.terms[t].weight)) ||
                             (!kind.terms[t].field &&
                              kind.terms[t].constant !=
                                  static_cast<double>(
                                      static_cast<std::int64_t>(kind.terms[t].constant)))))
                            refuse_declaration(
                                at + ".terms[" + std::to_string(t) + "]",
                                "an integer weighted sum needs integer weights and constants");
                    }
                    declare(c.column, at);
                } else if constexpr (std::is_same_v<K, Average>) {
                    if (kind.field.empty()) refuse_declaration(at, "'field' is empty");
                    declare(c.column, at);
                    declare(c.column + "_sum", at);
                    declare(c.column + "_count", at);
                } else if constexpr (std::is_same_v<K, Every> || std::is_same_v<K, Any>) {
                    predicate(kind.predicate);
                    declare(c.column, at);
                    declare(c.column + "_matched", at);
                    declare(c.column + "_satisfied", at);
                } else if constexpr (std::is_same_v<K, Transform>) {
                    if (!valid_identifier(c.column, 48))
                        refuse_declaration(
                            at, "table suffix '" + c.column + "' must match [a-z_][a-z0-9_]*");
                    std::set<std::string> own;
                    const auto& key = kind.key.empty() ? projection.key : kind.key;
                    if (key.empty())
                        refuse_declaration(
                            at, "a transform needs key fields (its own or the projection's)");
                    check_key(key, at + ".key", own);
                    if (kind.columns.empty())
                        refuse_declaration(at, "a transform needs at least one column");
                    for (const TransformColumn& column : kind.columns) {
                        if (column.field.empty()) refuse_declaration(at, "a column has no field");
                        const std::string name =
                            column.column.empty() ? default_column(column.field) : column.column;
                        if (!valid_identifier(name, 48))
                            refuse_declaration(at,
                                               "column '" + name + "' must match [a-z_][a-z0-9_]*");
                        if (!own.insert(name).second)
                            refuse_declaration(at, "column '" + name + "' is declared twice");
                    }
                    if (kind.remove_on) check_filter(*kind.remove_on, at + ".remove_on");
                } else if constexpr (std::is_same_v<K, StateMachine>) {
                    std::set<std::string> states;
                    for (const std::string& state : kind.states) {
                        if (state.empty()) refuse_declaration(at, "a state has an empty name");
                        if (!states.insert(state).second)
                            refuse_declaration(at, "state '" + state + "' is declared twice");
                    }
                    if (states.empty()) refuse_declaration(at, "no states are declared");
                    if (!states.count(kind.initial))
                        refuse_declaration(
                            at, "the initial state '" + kind.initial + "' is not a declared state");
                    if (kind.transitions.empty())
                        refuse_declaration(at, "no transitions are declared");
                    for (std::size_t t = 0; t < kind.transitions.size(); ++t) {
                        const Transition& transition = kind.transitions[t];
                        const std::string tat = at + ".transitions[" + std::to_string(t) + "]";
                        if (transition.from.empty())
                            refuse_declaration(tat, "'from' names no state");
                        for (const std::string& from : transition.from)
                            if (!states.count(from))
                                refuse_declaration(
                                    tat, "transition from undeclared state '" + from + "'");
                        if (!states.count(transition.to))
                            refuse_declaration(
                                tat, "transition to undeclared state '" + transition.to + "'");
                        check_filter(transition.on, tat + ".on");
                    }
                    declare(c.column, at);
                    declare(c.column + "_ignored", at);
                }
            },
            c.kind);
    }
}

}  // namespace factstr::projections
