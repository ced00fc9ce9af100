// The compiled computations of a Plan, shared by its compilation (plan.cpp) and the fold
// (fold.cpp): each aggregate computation with its filter, payload paths and first physical
// column, and each transform with the key and fields of its rows.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "fact_fields.hpp"
#include "factstr/json.hpp"
#include "plan.hpp"

namespace factstr::projections::detail {

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

}  // namespace factstr::projections::detail
