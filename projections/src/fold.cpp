// The fold: a page of facts turned into one update per key and table. This is where the
// semantics of every computation are written (DESIGN.md §5); the table writers only add, set
// and derive columns as the plan says.
#include <algorithm>
#include <unordered_map>

#include "computations.hpp"
#include "plan.hpp"

namespace factstr::projections::detail {
namespace {

void add_integer(Cell& cell, std::int64_t delta, const EventRecord& record,
                 const std::string& column) {
    std::int64_t& sum = std::get<std::int64_t>(cell);
    if (__builtin_add_overflow(sum, delta, &sum))
        throw FoldFailure(record.sequence_number,
                          describe(record) + ": column '" + column + "' overflows 64 bits");
}

[[noreturn]] void refuse_missing_field(const EventRecord& record, const std::string& field,
                                       const std::string& column) {
    throw FoldFailure(record.sequence_number, describe(record) + " has no field '" + field +
                                                  "' for column '" + column + "'");
}

}  // namespace

// One page being folded: the updates so far, and the fact being folded now. The order of the
// steps of each computation is part of its contract: a fact that breaks two rules is reported
// by the first one checked.
class Plan::Fold {
  public:
    Fold(Plan& plan, const RowLookup& lookup)
        : plan_(plan), lookup_(lookup), main_key_(plan.projection_.key) {
        delta_.tables.resize(plan.tables_.size());
        transform_rows_.resize(plan.transforms_.size());
    }

    void add(const EventRecord& record) {
        ++delta_.facts;
        record_ = &record;
        payload_ = json::parse_stored(record.payload);
        row_ = nullptr;
        for (const Aggregate& aggregate : plan_.aggregates_) {
            if (aggregate.filter && !aggregate.filter->matches(record.event_type, payload_))
                continue;
            switch (aggregate.kind) {
                case Aggregate::Kind::count:
                    count(aggregate);
                    break;
                case Aggregate::Kind::sum:
                case Aggregate::Kind::average:
                    sum_or_average(aggregate);
                    break;
                case Aggregate::Kind::weighted_sum:
                    weighted_sum(aggregate);
                    break;
                case Aggregate::Kind::every:
                case Aggregate::Kind::any:
                    every_or_any(aggregate);
                    break;
                case Aggregate::Kind::state_machine:
                    state_machine(aggregate);
                    break;
            }
        }
        for (std::size_t t = 0; t < plan_.transforms_.size(); ++t)
            transform(t);
    }

    // The updates, with the values a row gets when it is inserted: the derived columns
    // computed from the deltas.
    PageDelta finish() {
        if (!plan_.aggregates_.empty())
            for (RowUpdate& row : delta_.tables[0])
                derive_columns(plan_.tables_.front(), row.values);
        return std::move(delta_);
    }

  private:
    // The aggregate row of the current fact, found or started on first use: a fact that no
    // computation counts starts no row (and needs no key).
    RowUpdate& row() {
        if (row_) return *row_;
        main_key_.text_of(payload_, *record_, row_key_);
        auto it = rows_.find(row_key_);
        if (it == rows_.end()) {
            it = rows_.emplace(row_key_, delta_.tables[0].size()).first;
            delta_.tables[0].push_back(start_row());
        }
        row_ = &delta_.tables[0][it->second];
        return *row_;
    }

    // A row's update before its first fact: zero deltas, and the states the row is in.
    RowUpdate start_row() {
        RowUpdate update{main_key_.extract(payload_, *record_), plan_.initial_values_, false};
        if (!plan_.state_columns_.empty()) {
            const std::vector<std::string>& states = states_of(update.key);
            for (std::size_t s = 0; s < plan_.state_columns_.size(); ++s)
                update.values[plan_.state_columns_[s]] = Cell(states[s]);
        }
        return update;
    }

    // The current states of the row keyed `row_key_`: cached, or read once from the table
    // (unless the cache knows every row: then the initial states).
    const std::vector<std::string>& states_of(const std::vector<Cell>& key) {
        auto cached = plan_.state_cache_.find(row_key_);
        if (cached != plan_.state_cache_.end()) return cached->second;
        std::vector<std::string> states;
        std::optional<std::vector<Cell>> stored;
        if (!plan_.state_cache_authoritative_) stored = lookup_(key);
        for (int column : plan_.state_columns_) {
            const std::string* state =
                stored ? std::get_if<std::string>(&(*stored)[column]) : nullptr;
            states.push_back(state ? *state : std::get<std::string>(plan_.initial_values_[column]));
        }
        return plan_.state_cache_.emplace(row_key_, std::move(states)).first->second;
    }

    void count(const Aggregate& aggregate) {
        add_integer(row().values[aggregate.column], 1, *record_, aggregate.column_name);
    }

    // An average keeps its sum and count in the two columns after it.
    void sum_or_average(const Aggregate& aggregate) {
        auto value = at_path(payload_, aggregate.path);
        if (!value) refuse_missing_field(*record_, aggregate.field, aggregate.column_name);
        RowUpdate& r = row();
        if (aggregate.kind == Aggregate::Kind::average) {
            std::get<double>(r.values[aggregate.column + 1]) +=
                real_of(*value, *record_, aggregate.field);
            add_integer(r.values[aggregate.column + 2], 1, *record_, aggregate.column_name);
        } else if (aggregate.type == ColumnType::integer) {
            add_integer(r.values[aggregate.column], integer_of(*value, *record_, aggregate.field),
                        *record_, aggregate.column_name);
        } else {
            std::get<double>(r.values[aggregate.column]) +=
                real_of(*value, *record_, aggregate.field);
        }
    }

    void weighted_sum(const Aggregate& aggregate) {
        for (const Aggregate::Term& term : aggregate.terms) {
            if (!term.filter.matches(record_->event_type, payload_)) continue;
            std::optional<element> value;
            if (term.path) {
                value = at_path(payload_, *term.path);
                if (!value) refuse_missing_field(*record_, term.field, aggregate.column_name);
            }
            RowUpdate& r = row();
            if (aggregate.type == ColumnType::integer) {
                std::int64_t v = value ? integer_of(*value, *record_, term.field)
                                       : static_cast<std::int64_t>(term.constant);
                std::int64_t product;
                if (__builtin_mul_overflow(static_cast<std::int64_t>(term.weight), v, &product))
                    throw FoldFailure(record_->sequence_number, describe(*record_) + ": column '" +
                                                                    aggregate.column_name +
                                                                    "' overflows 64 bits");
                add_integer(r.values[aggregate.column], product, *record_, aggregate.column_name);
            } else {
                double v = value ? real_of(*value, *record_, term.field) : term.constant;
                std::get<double>(r.values[aggregate.column]) += term.weight * v;
            }
        }
    }

    // Every and any keep the matched and satisfied counts in the two columns after them.
    void every_or_any(const Aggregate& aggregate) {
        RowUpdate& r = row();
        const int satisfied = aggregate.column + 2, matched = aggregate.column + 1;
        add_integer(r.values[matched], 1, *record_, aggregate.column_name);
        if (json::subset_match(*aggregate.predicate, payload_))
            add_integer(r.values[satisfied], 1, *record_, aggregate.column_name);
    }

    // The first transition the fact fits from the current state moves it; a fact that fits
    // transitions, none from this state, is ignored (counted in the `_ignored` column after
    // the state).
    void state_machine(const Aggregate& aggregate) {
        const Aggregate::Move* fitting = nullptr;
        bool fits_any = false;
        RowUpdate* r = nullptr;
        for (const Aggregate::Move& move : aggregate.transitions) {
            if (!move.on.matches(record_->event_type, payload_)) continue;
            if (!r) r = &row();
            fits_any = true;
            const std::string& state = std::get<std::string>(r->values[aggregate.column]);
            if (std::find(move.from.begin(), move.from.end(), state) != move.from.end()) {
                fitting = &move;
                break;
            }
        }
        if (!fits_any) return;
        if (fitting) {
            r->values[aggregate.column] = Cell(fitting->to);
            plan_.state_cache_[row_key_][aggregate.state_slot] = fitting->to;
        } else {
            add_integer(r->values[aggregate.column + 1], 1, *record_, aggregate.column_name);
        }
    }

    // A transform's row for the fact (its fields, absent ones NULL), or its removal; the last
    // fact of the page for a key wins.
    void transform(std::size_t t) {
        const TransformPlan& transform = plan_.transforms_[t];
        const bool removes =
            transform.remove_on && transform.remove_on->matches(record_->event_type, payload_);
        if (!removes && !transform.filter.matches(record_->event_type, payload_)) return;
        RowUpdate update{transform.key.extract(payload_, *record_), {}, removes};
        if (!removes) {
            for (std::size_t c = 0; c < transform.columns.size(); ++c) {
                auto value = at_path(payload_, transform.paths[c]);
                if (!value) {
                    update.values.emplace_back();
                    continue;
                }
                auto cell = cell_of(*value, transform.columns[c].type);
                if (!cell)
                    throw FoldFailure(
                        record_->sequence_number,
                        describe(*record_) + ": field '" + transform.columns[c].field + "' is " +
                            element_json(*value) + ", not " + to_string(transform.columns[c].type));
                update.values.push_back(std::move(*cell));
            }
        }
        auto& table = delta_.tables[transform.table];
        auto [it, inserted] = transform_rows_[t].try_emplace(key_text(update.key), table.size());
        if (inserted)
            table.push_back(std::move(update));
        else
            table[it->second] = std::move(update);
    }

    Plan& plan_;
    const RowLookup& lookup_;
    const KeyPlan main_key_;
    PageDelta delta_;
    std::unordered_map<std::string, std::size_t> rows_;  // aggregate rows by key text
    std::vector<std::unordered_map<std::string, std::size_t>> transform_rows_;

    // The fact being folded.
    const EventRecord* record_ = nullptr;
    element payload_;
    RowUpdate* row_ = nullptr;  // its aggregate row, once row() was asked
    std::string row_key_;       // that row's key text (reused: no allocation per fact)
};

PageDelta Plan::fold(const BatchPage& page, const RowLookup& lookup) {
    Fold fold(*this, lookup);
    for (const CommittedBatch& batch : page.batches)
        for (const EventRecord& record : batch.records)
            fold.add(record);
    return fold.finish();
}

}  // namespace factstr::projections::detail
