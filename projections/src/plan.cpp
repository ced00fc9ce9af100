#include "plan.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "factstr/json.hpp"

namespace factstr::projections::detail {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

std::vector<std::string> split_path(const std::string& field) {
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

std::optional<element> at_path(element node, const std::vector<std::string>& path) {
    for (const std::string& part : path) {
        simdjson::dom::object object;
        if (node.get_object().get(object)) return std::nullopt;
        if (object.at_key(part).get(node)) return std::nullopt;
    }
    if (node.type() == element_type::NULL_VALUE) return std::nullopt;
    return node;
}

CompiledFilter compile(const EventFilter& filter) {
    return CompiledQuery(EventQuery{std::vector{filter}, std::nullopt}).filters().front();
}

std::string describe(const EventRecord& record) {
    return "fact " + std::to_string(record.sequence_number) + " (" + record.event_type + ")";
}

std::string element_json(element value) {
    return simdjson::minify(value);
}

std::int64_t integer_of(element value, const EventRecord& record, const std::string& field) {
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

double real_of(element value, const EventRecord& record, const std::string& field) {
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
std::optional<Cell> cell_of(element value, ColumnType type) {
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

void add_integer(Cell& cell, std::int64_t delta, const EventRecord& record,
                 const std::string& column) {
    std::int64_t& sum = std::get<std::int64_t>(cell);
    if (__builtin_add_overflow(sum, delta, &sum))
        throw FoldFailure(record.sequence_number,
                          describe(record) + ": column '" + column + "' overflows 64 bits");
}

// One key cell in the form key_text uses: s<text>, i<number>, bt/bf, n.
void append_key_text(std::string& out, const Cell& cell) {
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

}  // namespace

void derive_columns(const TableSpec& table, std::vector<Cell>& values) {
    for (std::size_t c = 0; c < table.columns.size(); ++c) {
        const PhysicalColumn& column = table.columns[c];
        if (column.op == Op::average) {
            const auto count = std::get<std::int64_t>(values[column.b]);
            values[c] = count == 0
                            ? Cell()
                            : Cell(std::get<double>(values[column.a]) / static_cast<double>(count));
        } else if (column.op == Op::every || column.op == Op::any) {
            const auto satisfied = std::get<std::int64_t>(values[column.a]);
            const auto matched = std::get<std::int64_t>(values[column.b]);
            values[c] = Cell(matched == 0             ? column.when_empty
                             : column.op == Op::every ? satisfied == matched
                                                      : satisfied > 0);
        }
    }
}

std::string key_text(const std::vector<Cell>& key) {
    std::string text;
    for (std::size_t i = 0; i < key.size(); ++i) {
        if (i) text += '\x1f';
        append_key_text(text, key[i]);
    }
    return text;
}

struct Plan::Aggregate {
    enum class Kind { count, sum, weighted_sum, average, every, any, state_machine } kind;
    std::string column_name;
    std::optional<CompiledFilter> filter;
    std::vector<std::string> path;
    std::string field;
    ColumnType type = ColumnType::real;
    int column = 0;  // its first physical column
    struct Term {
        CompiledFilter filter;
        double weight;
        std::optional<std::vector<std::string>> path;
        std::string field;
        double constant;
    };
    std::vector<Term> terms;
    std::optional<json::Value> predicate;
    struct Move {
        std::vector<std::string> from;
        CompiledFilter on;
        std::string to;
    };
    std::vector<Move> transitions;
    std::string initial;
    int state_slot = 0;  // index into the row's state vector
};

struct Plan::TransformPlan {
    CompiledFilter filter;
    std::optional<CompiledFilter> remove_on;
    KeyPlan key;
    std::vector<std::vector<std::string>> paths;
    std::vector<TransformColumn> columns;
    std::size_t table = 0;
};

Plan::~Plan() = default;
Plan::Plan(Plan&&) noexcept = default;

Plan::Plan(Projection projection) : projection_(std::move(projection)) {
    validate(projection_);
    auto name_columns = [](std::vector<KeyField>& key) {
        for (KeyField& field : key)
            if (field.column.empty()) field.column = default_column(field.field);
    };
    name_columns(projection_.key);
    for (Computation& c : projection_.computations)
        if (auto* transform = std::get_if<Transform>(&c.kind)) name_columns(transform->key);
    declaration_json_ = to_json(projection_);
    fingerprint_ = projections::fingerprint(projection_);

    std::vector<EventFilter> filters;
    TableSpec main;
    main.name = projection_.name;
    main.key = KeyPlan(projection_.key).fields;
    auto add_column = [&](std::string name, ColumnType type, Op op) {
        main.columns.push_back({std::move(name), type, op});
        return static_cast<int>(main.columns.size() - 1);
    };
    for (const Computation& c : projection_.computations) {
        if (c.filter) filters.push_back(*c.filter);
        if (const auto* transform = std::get_if<Transform>(&c.kind)) {
            TableSpec table;
            table.name = projection_.name + "_" + c.column;
            table.transform = true;
            table.key = transform->key.empty() ? projection_.key : transform->key;
            TransformPlan plan{compile(*c.filter), std::nullopt, KeyPlan(table.key), {}, {}, 0};
            for (const TransformColumn& column : transform->columns) {
                TransformColumn named = column;
                if (named.column.empty()) named.column = default_column(column.field);
                table.columns.push_back({named.column, named.type, Op::set});
                plan.paths.push_back(split_path(column.field));
                plan.columns.push_back(std::move(named));
            }
            if (transform->remove_on) {
                plan.remove_on = compile(*transform->remove_on);
                filters.push_back(*transform->remove_on);
            }
            transforms_.push_back(std::move(plan));
            tables_.push_back(std::move(table));
            continue;
        }
        Aggregate aggregate;
        aggregate.column_name = c.column;
        if (c.filter) aggregate.filter = compile(*c.filter);
        std::visit(
            [&](const auto& kind) {
                using K = std::decay_t<decltype(kind)>;
                if constexpr (std::is_same_v<K, Count>) {
                    aggregate.kind = Aggregate::Kind::count;
                    aggregate.type = ColumnType::integer;
                    aggregate.column = add_column(c.column, ColumnType::integer, Op::add);
                } else if constexpr (std::is_same_v<K, Summation>) {
                    aggregate.kind = Aggregate::Kind::sum;
                    aggregate.type = kind.type;
                    aggregate.field = kind.field;
                    aggregate.path = split_path(kind.field);
                    aggregate.column = add_column(c.column, kind.type, Op::add);
                } else if constexpr (std::is_same_v<K, WeightedSummation>) {
                    aggregate.kind = Aggregate::Kind::weighted_sum;
                    aggregate.type = kind.type;
                    for (const WeightedTerm& term : kind.terms) {
                        filters.push_back(term.filter);
                        aggregate.terms.push_back(
                            {compile(term.filter), term.weight,
                             term.field ? std::optional(split_path(*term.field)) : std::nullopt,
                             term.field.value_or(""), term.constant});
                    }
                    aggregate.column = add_column(c.column, kind.type, Op::add);
                } else if constexpr (std::is_same_v<K, Average>) {
                    aggregate.kind = Aggregate::Kind::average;
                    aggregate.field = kind.field;
                    aggregate.path = split_path(kind.field);
                    aggregate.column = add_column(c.column, ColumnType::real, Op::average);
                    int sum = add_column(c.column + "_sum", ColumnType::real, Op::add);
                    int count = add_column(c.column + "_count", ColumnType::integer, Op::add);
                    main.columns[aggregate.column].a = sum;
                    main.columns[aggregate.column].b = count;
                } else if constexpr (std::is_same_v<K, Every> || std::is_same_v<K, Any>) {
                    aggregate.kind =
                        std::is_same_v<K, Every> ? Aggregate::Kind::every : Aggregate::Kind::any;
                    aggregate.predicate = json::Value::parse(kind.predicate, "predicate");
                    aggregate.column = add_column(c.column, ColumnType::boolean,
                                                  std::is_same_v<K, Every> ? Op::every : Op::any);
                    int matched = add_column(c.column + "_matched", ColumnType::integer, Op::add);
                    int satisfied =
                        add_column(c.column + "_satisfied", ColumnType::integer, Op::add);
                    main.columns[aggregate.column].a = satisfied;
                    main.columns[aggregate.column].b = matched;
                    main.columns[aggregate.column].when_empty = kind.when_empty;
                } else if constexpr (std::is_same_v<K, StateMachine>) {
                    aggregate.kind = Aggregate::Kind::state_machine;
                    aggregate.initial = kind.initial;
                    for (const Transition& transition : kind.transitions) {
                        filters.push_back(transition.on);
                        aggregate.transitions.push_back(
                            {transition.from, compile(transition.on), transition.to});
                    }
                    aggregate.column = add_column(c.column, ColumnType::text, Op::set);
                    add_column(c.column + "_ignored", ColumnType::integer, Op::add);
                    aggregate.state_slot = static_cast<int>(state_columns_.size());
                    state_columns_.push_back(aggregate.column);
                }
            },
            c.kind);
        aggregates_.push_back(std::move(aggregate));
    }
    if (!aggregates_.empty()) {
        tables_.insert(tables_.begin(), std::move(main));
    }
    for (std::size_t t = 0, table = aggregates_.empty() ? 0 : 1; t < transforms_.size(); ++t)
        transforms_[t].table = table + t;
    // Several computations usually look at the same facts (a count and a sum of one type):
    // each distinct filter once, so that a backend does not walk one index chain repeatedly.
    std::vector<EventFilter> distinct;
    std::set<std::string> seen;
    for (EventFilter& filter : filters)
        if (seen.insert(to_json(filter)).second) distinct.push_back(std::move(filter));
    union_query_.filters = std::move(distinct);

    if (!aggregates_.empty()) {
        const TableSpec& spec = tables_.front();
        for (const PhysicalColumn& column : spec.columns) {
            if (column.op == Op::add)
                initial_values_.push_back(column.type == ColumnType::integer ? Cell(std::int64_t{0})
                                                                             : Cell(0.0));
            else
                initial_values_.push_back(Cell());
        }
        for (const Aggregate& aggregate : aggregates_)
            if (aggregate.kind == Aggregate::Kind::state_machine)
                initial_values_[aggregate.column] = Cell(aggregate.initial);
    }
}

void Plan::reset_state_cache(bool authoritative) {
    state_cache_.clear();
    state_cache_authoritative_ = authoritative;
}

PageDelta Plan::fold(const BatchPage& page, const RowLookup& lookup) {
    PageDelta delta;
    delta.tables.resize(tables_.size());
    std::unordered_map<std::string, std::size_t> rows;  // aggregate rows by key text
    std::vector<std::unordered_map<std::string, std::size_t>> transform_rows(transforms_.size());
    const KeyPlan main_key(projection_.key);
    std::string row_key;  // reused: no allocation per fact

    for (const CommittedBatch& batch : page.batches) {
        for (const EventRecord& record : batch.records) {
            ++delta.facts;
            element payload = json::parse_stored(record.payload);
            RowUpdate* row = nullptr;
            auto the_row = [&]() -> RowUpdate& {
                if (row) return *row;
                main_key.text_of(payload, record, row_key);
                auto it = rows.find(row_key);
                if (it == rows.end()) {
                    it = rows.emplace(row_key, delta.tables[0].size()).first;
                    RowUpdate update{main_key.extract(payload, record), initial_values_, false};
                    if (!state_columns_.empty()) {
                        auto cached = state_cache_.find(row_key);
                        if (cached == state_cache_.end()) {
                            std::vector<std::string> states;
                            std::optional<std::vector<Cell>> stored;
                            if (!state_cache_authoritative_) stored = lookup(update.key);
                            for (int column : state_columns_) {
                                const std::string* state =
                                    stored ? std::get_if<std::string>(&(*stored)[column]) : nullptr;
                                states.push_back(
                                    state ? *state
                                          : std::get<std::string>(initial_values_[column]));
                            }
                            cached = state_cache_.emplace(row_key, std::move(states)).first;
                        }
                        for (std::size_t s = 0; s < state_columns_.size(); ++s)
                            update.values[state_columns_[s]] = Cell(cached->second[s]);
                    }
                    delta.tables[0].push_back(std::move(update));
                }
                row = &delta.tables[0][it->second];
                return *row;
            };

            for (const Aggregate& aggregate : aggregates_) {
                if (aggregate.filter && !aggregate.filter->matches(record.event_type, payload))
                    continue;
                switch (aggregate.kind) {
                    case Aggregate::Kind::count:
                        add_integer(the_row().values[aggregate.column], 1, record,
                                    aggregate.column_name);
                        break;
                    case Aggregate::Kind::sum:
                    case Aggregate::Kind::average: {
                        auto value = at_path(payload, aggregate.path);
                        if (!value)
                            throw FoldFailure(record.sequence_number,
                                              describe(record) + " has no field '" +
                                                  aggregate.field + "' for column '" +
                                                  aggregate.column_name + "'");
                        RowUpdate& r = the_row();
                        if (aggregate.kind == Aggregate::Kind::average) {
                            std::get<double>(r.values[aggregate.column + 1]) +=
                                real_of(*value, record, aggregate.field);
                            add_integer(r.values[aggregate.column + 2], 1, record,
                                        aggregate.column_name);
                        } else if (aggregate.type == ColumnType::integer) {
                            add_integer(r.values[aggregate.column],
                                        integer_of(*value, record, aggregate.field), record,
                                        aggregate.column_name);
                        } else {
                            std::get<double>(r.values[aggregate.column]) +=
                                real_of(*value, record, aggregate.field);
                        }
                        break;
                    }
                    case Aggregate::Kind::weighted_sum:
                        for (const Aggregate::Term& term : aggregate.terms) {
                            if (!term.filter.matches(record.event_type, payload)) continue;
                            std::optional<element> value;
                            if (term.path) {
                                value = at_path(payload, *term.path);
                                if (!value)
                                    throw FoldFailure(record.sequence_number,
                                                      describe(record) + " has no field '" +
                                                          term.field + "' for column '" +
                                                          aggregate.column_name + "'");
                            }
                            RowUpdate& r = the_row();
                            if (aggregate.type == ColumnType::integer) {
                                std::int64_t v = value ? integer_of(*value, record, term.field)
                                                       : static_cast<std::int64_t>(term.constant);
                                std::int64_t product;
                                if (__builtin_mul_overflow(static_cast<std::int64_t>(term.weight),
                                                           v, &product))
                                    throw FoldFailure(record.sequence_number,
                                                      describe(record) + ": column '" +
                                                          aggregate.column_name +
                                                          "' overflows 64 bits");
                                add_integer(r.values[aggregate.column], product, record,
                                            aggregate.column_name);
                            } else {
                                double v =
                                    value ? real_of(*value, record, term.field) : term.constant;
                                std::get<double>(r.values[aggregate.column]) += term.weight * v;
                            }
                        }
                        break;
                    case Aggregate::Kind::every:
                    case Aggregate::Kind::any: {
                        RowUpdate& r = the_row();
                        const int satisfied = aggregate.column + 2, matched = aggregate.column + 1;
                        add_integer(r.values[matched], 1, record, aggregate.column_name);
                        if (json::subset_match(*aggregate.predicate, payload))
                            add_integer(r.values[satisfied], 1, record, aggregate.column_name);
                        break;
                    }
                    case Aggregate::Kind::state_machine: {
                        // The first transition the fact fits from the current state moves it;
                        // a fact that fits transitions, none from this state, is ignored.
                        const Aggregate::Move* fitting = nullptr;
                        bool fits_any = false;
                        RowUpdate* r = nullptr;
                        for (const Aggregate::Move& move : aggregate.transitions) {
                            if (!move.on.matches(record.event_type, payload)) continue;
                            if (!r) r = &the_row();
                            fits_any = true;
                            const std::string& state =
                                std::get<std::string>(r->values[aggregate.column]);
                            if (std::find(move.from.begin(), move.from.end(), state) !=
                                move.from.end()) {
                                fitting = &move;
                                break;
                            }
                        }
                        if (!fits_any) break;
                        const bool moved = fitting != nullptr;
                        if (moved) {
                            r->values[aggregate.column] = Cell(fitting->to);
                            state_cache_[row_key][aggregate.state_slot] = fitting->to;
                        }
                        if (!moved)
                            add_integer(r->values[aggregate.column + 1], 1, record,
                                        aggregate.column_name);
                        break;
                    }
                }
            }

            for (std::size_t t = 0; t < transforms_.size(); ++t) {
                const TransformPlan& transform = transforms_[t];
                const bool removes =
                    transform.remove_on && transform.remove_on->matches(record.event_type, payload);
                if (!removes && !transform.filter.matches(record.event_type, payload)) continue;
                RowUpdate update{transform.key.extract(payload, record), {}, removes};
                if (!removes) {
                    for (std::size_t c = 0; c < transform.columns.size(); ++c) {
                        auto value = at_path(payload, transform.paths[c]);
                        if (!value) {
                            update.values.emplace_back();
                            continue;
                        }
                        auto cell = cell_of(*value, transform.columns[c].type);
                        if (!cell)
                            throw FoldFailure(record.sequence_number,
                                              describe(record) + ": field '" +
                                                  transform.columns[c].field + "' is " +
                                                  element_json(*value) + ", not " +
                                                  to_string(transform.columns[c].type));
                        update.values.push_back(std::move(*cell));
                    }
                }
                auto& table = delta.tables[transform.table];
                auto [it, inserted] =
                    transform_rows[t].try_emplace(key_text(update.key), table.size());
                if (inserted)
                    table.push_back(std::move(update));
                else
                    table[it->second] = std::move(update);  // the last fact for a key wins
            }
        }
    }

    // Values a row gets when it is inserted: the derived columns computed from the deltas.
    if (!aggregates_.empty())
        for (RowUpdate& row : delta.tables[0])
            derive_columns(tables_.front(), row.values);
    return delta;
}

}  // namespace factstr::projections::detail
