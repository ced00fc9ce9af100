// Projection declarations: the builder, validation, the JSON form and the fingerprint.
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "factstr/json.hpp"
#include "factstr/projections.hpp"
#include "factstr/query.hpp"
#include "plan.hpp"

namespace factstr::projections {
namespace {

using json::Value;
using Kind = json::Value::Kind;

[[noreturn]] void refuse(const std::string& where, const std::string& what) {
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

}  // namespace

namespace detail {
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

namespace {

const Value* member(const Value& object, std::string_view key) {
    for (const auto& [k, v] : object.members)
        if (k == key) return &v;
    return nullptr;
}

std::string require_string(const Value& object, std::string_view key, const std::string& where) {
    const Value* value = member(object, key);
    if (!value) refuse(where, "'" + std::string(key) + "' is missing");
    if (value->kind != Kind::string) refuse(where, "'" + std::string(key) + "' must be a string");
    return value->string;
}

std::optional<std::string> optional_string(const Value& object, std::string_view key,
                                           const std::string& where) {
    const Value* value = member(object, key);
    if (!value || value->kind == Kind::null) return std::nullopt;
    if (value->kind != Kind::string) refuse(where, "'" + std::string(key) + "' must be a string");
    return value->string;
}

double number_of(const Value& value, const std::string& where) {
    switch (value.kind) {
        case Kind::int64:
            return static_cast<double>(value.int64);
        case Kind::uint64:
            return static_cast<double>(value.uint64);
        case Kind::number:
            return value.number;
        default:
            refuse(where, "must be a number");
    }
}

bool bool_of(const Value& value, const std::string& where) {
    if (value.kind != Kind::boolean) refuse(where, "must be true or false");
    return value.boolean;
}

ColumnType parse_type(const Value* value, ColumnType fallback, const std::string& where) {
    if (!value || value->kind == Kind::null) return fallback;
    if (value->kind != Kind::string) refuse(where, "'type' must be a string");
    const std::string& name = value->string;
    if (name == "integer") return ColumnType::integer;
    if (name == "real") return ColumnType::real;
    if (name == "text") return ColumnType::text;
    if (name == "boolean") return ColumnType::boolean;
    refuse(where, "unknown type '" + name + "' (integer, real, text or boolean)");
}

EventFilter parse_filter(const Value& value, const std::string& where) {
    if (value.kind != Kind::object) refuse(where, "a filter must be a JSON object");
    try {
        EventQuery query = parse_event_query("{\"filters\":[" + json::to_json(value) + "]}");
        return std::move((*query.filters)[0]);
    } catch (const Error& e) {
        refuse(where, e.what());
    }
}

std::vector<KeyField> parse_key(const Value& value, const std::string& where) {
    std::vector<KeyField> key;
    if (value.kind == Kind::string) {
        key.push_back({value.string, ColumnType::text, default_column(value.string)});
        return key;
    }
    if (value.kind != Kind::array) refuse(where, "'key' must be a field name or an array");
    for (std::size_t i = 0; i < value.items.size(); ++i) {
        const Value& item = value.items[i];
        const std::string at = where + "[" + std::to_string(i) + "]";
        if (item.kind == Kind::string) {
            key.push_back({item.string, ColumnType::text, default_column(item.string)});
        } else if (item.kind == Kind::object) {
            KeyField field;
            field.field = require_string(item, "field", at);
            field.type = parse_type(member(item, "type"), ColumnType::text, at);
            field.column =
                optional_string(item, "column", at).value_or(default_column(field.field));
            key.push_back(std::move(field));
        } else {
            refuse(at, "a key entry is a field name or {\"field\":…,\"type\":…}");
        }
    }
    return key;
}

std::string predicate_text(const Value* value, const std::string& where) {
    if (!value) refuse(where, "'predicate' is missing");
    if (value->kind != Kind::object) refuse(where, "'predicate' must be a JSON object");
    return json::to_json(*value);
}

Computation parse_computation(const Value& value, const std::string& where) {
    if (value.kind != Kind::object) refuse(where, "a computation must be a JSON object");
    Computation computation;
    computation.column = require_string(value, "column", where);
    const std::string kind = require_string(value, "kind", where);
    if (const Value* filter = member(value, "filter"); filter && filter->kind != Kind::null)
        computation.filter = parse_filter(*filter, where + ".filter");
    auto field = [&] { return require_string(value, "field", where); };
    if (kind == "count") {
        computation.kind = Count{};
    } else if (kind == "sum") {
        computation.kind =
            Summation{field(), parse_type(member(value, "type"), ColumnType::real, where)};
    } else if (kind == "weighted_sum") {
        WeightedSummation sum;
        sum.type = parse_type(member(value, "type"), ColumnType::real, where);
        const Value* terms = member(value, "terms");
        if (!terms || terms->kind != Kind::array) refuse(where, "'terms' must be an array");
        for (std::size_t i = 0; i < terms->items.size(); ++i) {
            const Value& t = terms->items[i];
            const std::string at = where + ".terms[" + std::to_string(i) + "]";
            if (t.kind != Kind::object) refuse(at, "a term must be a JSON object");
            WeightedTerm term;
            const Value* filter = member(t, "filter");
            if (!filter) refuse(at, "'filter' is missing");
            term.filter = parse_filter(*filter, at + ".filter");
            if (const Value* weight = member(t, "weight"))
                term.weight = number_of(*weight, at + ".weight");
            term.field = optional_string(t, "field", at);
            if (const Value* constant = member(t, "constant"))
                term.constant = number_of(*constant, at + ".constant");
            sum.terms.push_back(std::move(term));
        }
        computation.kind = std::move(sum);
    } else if (kind == "average") {
        computation.kind = Average{field()};
    } else if (kind == "every" || kind == "any") {
        std::string predicate = predicate_text(member(value, "predicate"), where);
        const Value* empty = member(value, "when_empty");
        if (kind == "every")
            computation.kind =
                Every{predicate, empty ? bool_of(*empty, where + ".when_empty") : true};
        else
            computation.kind =
                Any{predicate, empty ? bool_of(*empty, where + ".when_empty") : false};
    } else if (kind == "transform") {
        Transform transform;
        if (const Value* key = member(value, "key"))
            transform.key = parse_key(*key, where + ".key");
        const Value* columns = member(value, "columns");
        if (!columns || columns->kind != Kind::array) refuse(where, "'columns' must be an array");
        for (std::size_t i = 0; i < columns->items.size(); ++i) {
            const Value& c = columns->items[i];
            const std::string at = where + ".columns[" + std::to_string(i) + "]";
            if (c.kind != Kind::object) refuse(at, "a column must be a JSON object");
            TransformColumn column;
            column.field = require_string(c, "field", at);
            column.column = optional_string(c, "column", at).value_or(default_column(column.field));
            column.type = parse_type(member(c, "type"), ColumnType::text, at);
            transform.columns.push_back(std::move(column));
        }
        if (const Value* remove = member(value, "remove_on"); remove && remove->kind != Kind::null)
            transform.remove_on = parse_filter(*remove, where + ".remove_on");
        computation.kind = std::move(transform);
    } else if (kind == "state_machine") {
        StateMachine machine;
        const Value* states = member(value, "states");
        if (!states || states->kind != Kind::array) refuse(where, "'states' must be an array");
        for (const Value& state : states->items) {
            if (state.kind != Kind::string) refuse(where + ".states", "states are strings");
            machine.states.push_back(state.string);
        }
        machine.initial = require_string(value, "initial", where);
        const Value* transitions = member(value, "transitions");
        if (!transitions || transitions->kind != Kind::array)
            refuse(where, "'transitions' must be an array");
        for (std::size_t i = 0; i < transitions->items.size(); ++i) {
            const Value& t = transitions->items[i];
            const std::string at = where + ".transitions[" + std::to_string(i) + "]";
            if (t.kind != Kind::object) refuse(at, "a transition must be a JSON object");
            Transition transition;
            const Value* from = member(t, "from");
            if (from && from->kind == Kind::string) {
                transition.from.push_back(from->string);
            } else if (from && from->kind == Kind::array) {
                for (const Value& state : from->items) {
                    if (state.kind != Kind::string) refuse(at + ".from", "states are strings");
                    transition.from.push_back(state.string);
                }
            } else {
                refuse(at, "'from' must be a state or an array of states");
            }
            const Value* on_filter = member(t, "on");
            if (!on_filter) refuse(at, "'on' is missing");
            transition.on = parse_filter(*on_filter, at + ".on");
            transition.to = require_string(t, "to", at);
            machine.transitions.push_back(std::move(transition));
        }
        computation.kind = std::move(machine);
    } else {
        refuse(where, "unknown kind '" + kind +
                          "' (count, sum, weighted_sum, average, every, any, transform, "
                          "state_machine)");
    }
    for (const auto& [k, v] : value.members) {
        static const std::set<std::string_view> known = {
            "column",     "kind", "filter",  "field",     "type",   "terms",   "predicate",
            "when_empty", "key",  "columns", "remove_on", "states", "initial", "transitions"};
        if (!known.count(k)) refuse(where, "unknown member '" + k + "'");
    }
    return computation;
}

Projection parse_projection_value(const Value& root, const std::string& where_prefix) {
    if (root.kind != Kind::object) refuse(where_prefix, "a projection must be a JSON object");
    Projection projection(require_string(root, "name", where_prefix));
    const std::string where = "projection '" + projection.name + "'";
    if (const Value* key = member(root, "key"); key && key->kind != Kind::null)
        projection.key = parse_key(*key, where + ".key");
    const Value* computations = member(root, "computations");
    if (!computations || computations->kind != Kind::array)
        refuse(where, "'computations' must be an array");
    for (std::size_t i = 0; i < computations->items.size(); ++i)
        projection.computations.push_back(parse_computation(
            computations->items[i], where + ".computations[" + std::to_string(i) + "]"));
    for (const auto& [k, v] : root.members)
        if (k != "name" && k != "key" && k != "computations")
            refuse(where, "unknown member '" + k + "'");
    validate(projection);
    return projection;
}

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
        refuse(where, "the name must match [a-z_][a-z0-9_]* (at most 48 characters)");
    if (projection.computations.empty()) refuse(where, "no computations are declared");
    std::set<std::string> columns;
    auto declare = [&](const std::string& column, const std::string& at) {
        if (!valid_identifier(column, 48))
            refuse(at,
                   "column '" + column + "' must match [a-z_][a-z0-9_]* (at most 48 characters)");
        if (!columns.insert(column).second) refuse(at, "column '" + column + "' is declared twice");
    };
    auto check_filter = [&](const EventFilter& filter, const std::string& at) {
        try {
            CompiledQuery(EventQuery{std::vector{filter}, std::nullopt});
        } catch (const Error& e) {
            refuse(at, e.what());
        }
    };
    auto check_key = [&](const std::vector<KeyField>& key, const std::string& at,
                         std::set<std::string>& names) {
        for (const KeyField& field : key) {
            if (field.field.empty()) refuse(at, "a key field has no name");
            if (field.type == ColumnType::real)
                refuse(at,
                       "key field '" + field.field + "' cannot be real (integer, text or boolean)");
            const std::string column =
                field.column.empty() ? default_column(field.field) : field.column;
            if (!valid_identifier(column, 48))
                refuse(at, "key column '" + column + "' must match [a-z_][a-z0-9_]*");
            if (!names.insert(column).second)
                refuse(at, "column '" + column + "' is declared twice");
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
        if (needs_filter && !c.filter) refuse(at, "a filter is required");
        auto numeric = [&](ColumnType type) {
            if (type != ColumnType::integer && type != ColumnType::real)
                refuse(at, std::string("a sum is integer or real, not ") + to_string(type));
        };
        auto predicate = [&](const std::string& text) {
            Value value = Value::parse(text, at + " predicate");
            if (value.kind != Kind::object) refuse(at, "the predicate must be a JSON object");
        };
        std::visit(
            [&](const auto& kind) {
                using K = std::decay_t<decltype(kind)>;
                if constexpr (std::is_same_v<K, Count>) {
                    declare(c.column, at);
                } else if constexpr (std::is_same_v<K, Summation>) {
                    if (kind.field.empty()) refuse(at, "'field' is empty");
                    numeric(kind.type);
                    declare(c.column, at);
                } else if constexpr (std::is_same_v<K, WeightedSummation>) {
                    numeric(kind.type);
                    if (kind.terms.empty()) refuse(at, "a weighted sum needs at least one term");
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
                            refuse(at + ".terms[" + std::to_string(t) + "]",
                                   "an integer weighted sum needs integer weights and constants");
                    }
                    declare(c.column, at);
                } else if constexpr (std::is_same_v<K, Average>) {
                    if (kind.field.empty()) refuse(at, "'field' is empty");
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
                        refuse(at, "table suffix '" + c.column + "' must match [a-z_][a-z0-9_]*");
                    std::set<std::string> own;
                    const auto& key = kind.key.empty() ? projection.key : kind.key;
                    if (key.empty())
                        refuse(at, "a transform needs key fields (its own or the projection's)");
                    check_key(key, at + ".key", own);
                    if (kind.columns.empty()) refuse(at, "a transform needs at least one column");
                    for (const TransformColumn& column : kind.columns) {
                        if (column.field.empty()) refuse(at, "a column has no field");
                        const std::string name =
                            column.column.empty() ? default_column(column.field) : column.column;
                        if (!valid_identifier(name, 48))
                            refuse(at, "column '" + name + "' must match [a-z_][a-z0-9_]*");
                        if (!own.insert(name).second)
                            refuse(at, "column '" + name + "' is declared twice");
                    }
                    if (kind.remove_on) check_filter(*kind.remove_on, at + ".remove_on");
                } else if constexpr (std::is_same_v<K, StateMachine>) {
                    std::set<std::string> states;
                    for (const std::string& state : kind.states) {
                        if (state.empty()) refuse(at, "a state has an empty name");
                        if (!states.insert(state).second)
                            refuse(at, "state '" + state + "' is declared twice");
                    }
                    if (states.empty()) refuse(at, "no states are declared");
                    if (!states.count(kind.initial))
                        refuse(at,
                               "the initial state '" + kind.initial + "' is not a declared state");
                    if (kind.transitions.empty()) refuse(at, "no transitions are declared");
                    for (std::size_t t = 0; t < kind.transitions.size(); ++t) {
                        const Transition& transition = kind.transitions[t];
                        const std::string tat = at + ".transitions[" + std::to_string(t) + "]";
                        if (transition.from.empty()) refuse(tat, "'from' names no state");
                        for (const std::string& from : transition.from)
                            if (!states.count(from))
                                refuse(tat, "transition from undeclared state '" + from + "'");
                        if (!states.count(transition.to))
                            refuse(tat, "transition to undeclared state '" + transition.to + "'");
                        check_filter(transition.on, tat + ".on");
                    }
                    declare(c.column, at);
                    declare(c.column + "_ignored", at);
                }
            },
            c.kind);
    }
}

Projection parse_projection(std::string_view json_text) {
    Value root = Value::parse(json_text, "projection declaration");
    return parse_projection_value(root, "projection declaration");
}

std::vector<Projection> parse_projections(std::string_view json_text) {
    Value root = Value::parse(json_text, "projection declarations");
    std::vector<Projection> projections;
    if (root.kind == Kind::array) {
        for (std::size_t i = 0; i < root.items.size(); ++i)
            projections.push_back(
                parse_projection_value(root.items[i], "declarations[" + std::to_string(i) + "]"));
    } else {
        projections.push_back(parse_projection_value(root, "projection declaration"));
    }
    std::set<std::string> names;
    for (const Projection& projection : projections)
        if (!names.insert(projection.name).second)
            refuse("projection '" + projection.name + "'", "declared twice");
    return projections;
}

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

const char* to_string(ProjectionStatus::State state) noexcept {
    switch (state) {
        case ProjectionStatus::State::running:
            return "running";
        case ProjectionStatus::State::caught_up:
            return "caught_up";
        case ProjectionStatus::State::failed:
            return "failed";
        case ProjectionStatus::State::rebuilding:
            return "rebuilding";
        case ProjectionStatus::State::stopped:
            return "stopped";
    }
    return "unknown";
}

std::size_t Table::column(std::string_view name) const {
    for (std::size_t i = 0; i < columns.size(); ++i)
        if (columns[i] == name) return i;
    throw InvalidInput(ErrorCode::invalid_argument,
                       "the table has no column '" + std::string(name) + "'");
}

}  // namespace factstr::projections
