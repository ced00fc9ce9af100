// A Plan's compilation: the derived tables and physical columns of a projection, its compiled
// computations and the union query of every fact it looks at; and the row helpers the table
// writers share (derive_columns, key_text). The fold is in fold.cpp.
#include "plan.hpp"

#include <set>

#include "computations.hpp"

namespace factstr::projections::detail {
namespace {

CompiledFilter compile(const EventFilter& filter) {
    return CompiledQuery(EventQuery{std::vector{filter}, std::nullopt}).filters().front();
}

}  // namespace

void derive_columns(const TableSpec& table, std::span<Cell> values) {
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
                initial_values_.emplace_back();  // NULL
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

}  // namespace factstr::projections::detail
