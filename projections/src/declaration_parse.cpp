// Projection declarations from their JSON form (parse_projection, parse_projections): every
// member checked, every mistake refused naming its place.
#include <set>

#include "declaration.hpp"
#include "factstr/json.hpp"
#include "factstr/projections.hpp"
#include "factstr/query.hpp"
#include "plan.hpp"

namespace factstr::projections {
namespace {

using detail::default_column;
using detail::refuse_declaration;
using json::Value;
using Kind = json::Value::Kind;

const Value* member(const Value& object, std::string_view key) {
    for (const auto& [k, v] : object.members)
        if (k == key) return &v;
    return nullptr;
}

std::string require_string(const Value& object, std::string_view key, const std::string& where) {
    const Value* value = member(object, key);
    if (!value) refuse_declaration(where, "'" + std::string(key) + "' is missing");
    if (value->kind != Kind::string)
        refuse_declaration(where, "'" + std::string(key) + "' must be a string");
    return value->string;
}

std::optional<std::string> optional_string(const Value& object, std::string_view key,
                                           const std::string& where) {
    const Value* value = member(object, key);
    if (!value || value->kind == Kind::null) return std::nullopt;
    if (value->kind != Kind::string)
        refuse_declaration(where, "'" + std::string(key) + "' must be a string");
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
            refuse_declaration(where, "must be a number");
    }
}

bool bool_of(const Value& value, const std::string& where) {
    if (value.kind != Kind::boolean) refuse_declaration(where, "must be true or false");
    return value.boolean;
}

ColumnType parse_type(const Value* value, ColumnType fallback, const std::string& where) {
    if (!value || value->kind == Kind::null) return fallback;
    if (value->kind != Kind::string) refuse_declaration(where, "'type' must be a string");
    const std::string& name = value->string;
    if (name == "integer") return ColumnType::integer;
    if (name == "real") return ColumnType::real;
    if (name == "text") return ColumnType::text;
    if (name == "boolean") return ColumnType::boolean;
    refuse_declaration(where, "unknown type '" + name + "' (integer, real, text or boolean)");
}

EventFilter parse_filter(const Value& value, const std::string& where) {
    if (value.kind != Kind::object) refuse_declaration(where, "a filter must be a JSON object");
    try {
        EventQuery query = parse_event_query("{\"filters\":[" + json::to_json(value) + "]}");
        return std::move((*query.filters)[0]);
    } catch (const Error& e) {
        refuse_declaration(where, e.what());
    }
}

std::vector<KeyField> parse_key(const Value& value, const std::string& where) {
    std::vector<KeyField> key;
    if (value.kind == Kind::string) {
        key.push_back({value.string, ColumnType::text, default_column(value.string)});
        return key;
    }
    if (value.kind != Kind::array)
        refuse_declaration(where, "'key' must be a field name or an array");
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
            refuse_declaration(at, "a key entry is a field name or {\"field\":…,\"type\":…}");
        }
    }
    return key;
}

std::string predicate_text(const Value* value, const std::string& where) {
    if (!value) refuse_declaration(where, "'predicate' is missing");
    if (value->kind != Kind::object) refuse_declaration(where, "'predicate' must be a JSON object");
    return json::to_json(*value);
}

Computation parse_computation(const Value& value, const std::string& where) {
    if (value.kind != Kind::object)
        refuse_declaration(where, "a computation must be a JSON object");
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
        if (!terms || terms->kind != Kind::array)
            refuse_declaration(where, "'terms' must be an array");
        for (std::size_t i = 0; i < terms->items.size(); ++i) {
            const Value& t = terms->items[i];
            const std::string at = where + ".terms[" + std::to_string(i) + "]";
            if (t.kind != Kind::object) refuse_declaration(at, "a term must be a JSON object");
            WeightedTerm term;
            const Value* filter = member(t, "filter");
            if (!filter) refuse_declaration(at, "'filter' is missing");
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
        if (!columns || columns->kind != Kind::array)
            refuse_declaration(where, "'columns' must be an array");
        for (std::size_t i = 0; i < columns->items.size(); ++i) {
            const Value& c = columns->items[i];
            const std::string at = where + ".columns[" + std::to_string(i) + "]";
            if (c.kind != Kind::object) refuse_declaration(at, "a column must be a JSON object");
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
        if (!states || states->kind != Kind::array)
            refuse_declaration(where, "'states' must be an array");
        for (const Value& state : states->items) {
            if (state.kind != Kind::string)
                refuse_declaration(where + ".states", "states are strings");
            machine.states.push_back(state.string);
        }
        machine.initial = require_string(value, "initial", where);
        const Value* transitions = member(value, "transitions");
        if (!transitions || transitions->kind != Kind::array)
            refuse_declaration(where, "'transitions' must be an array");
        for (std::size_t i = 0; i < transitions->items.size(); ++i) {
            const Value& t = transitions->items[i];
            const std::string at = where + ".transitions[" + std::to_string(i) + "]";
            if (t.kind != Kind::object)
                refuse_declaration(at, "a transition must be a JSON object");
            Transition transition;
            const Value* from = member(t, "from");
            if (from && from->kind == Kind::string) {
                transition.from.push_back(from->string);
            } else if (from && from->kind == Kind::array) {
                for (const Value& state : from->items) {
                    if (state.kind != Kind::string)
                        refuse_declaration(at + ".from", "states are strings");
                    transition.from.push_back(state.string);
                }
            } else {
                refuse_declaration(at, "'from' must be a state or an array of states");
            }
            const Value* on_filter = member(t, "on");
            if (!on_filter) refuse_declaration(at, "'on' is missing");
            transition.on = parse_filter(*on_filter, at + ".on");
            transition.to = require_string(t, "to", at);
            machine.transitions.push_back(std::move(transition));
        }
        computation.kind = std::move(machine);
    } else {
        refuse_declaration(where,
                           "unknown kind '" + kind +
                               "' (count, sum, weighted_sum, average, every, any, transform, "
                               "state_machine)");
    }
    for (const auto& [k, v] : value.members) {
        static const std::set<std::string_view> known = {
            "column",     "kind", "filter",  "field",     "type",   "terms",   "predicate",
            "when_empty", "key",  "columns", "remove_on", "states", "initial", "transitions"};
        if (!known.count(k)) refuse_declaration(where, "unknown member '" + k + "'");
    }
    return computation;
}

Projection parse_projection_value(const Value& root, const std::string& where_prefix) {
    if (root.kind != Kind::object)
        refuse_declaration(where_prefix, "a projection must be a JSON object");
    Projection projection(require_string(root, "name", where_prefix));
    const std::string where = "projection '" + projection.name + "'";
    if (const Value* key = member(root, "key"); key && key->kind != Kind::null)
        projection.key = parse_key(*key, where + ".key");
    const Value* computations = member(root, "computations");
    if (!computations || computations->kind != Kind::array)
        refuse_declaration(where, "'computations' must be an array");
    for (std::size_t i = 0; i < computations->items.size(); ++i)
        projection.computations.push_back(parse_computation(
            computations->items[i], where + ".computations[" + std::to_string(i) + "]"));
    for (const auto& [k, v] : root.members)
        if (k != "name" && k != "key" && k != "computations")
            refuse_declaration(where, "unknown member '" + k + "'");
    validate(projection);
    return projection;
}

}  // namespace

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
            refuse_declaration("projection '" + projection.name + "'", "declared twice");
    return projections;
}

}  // namespace factstr::projections
