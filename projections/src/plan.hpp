// A projection compiled for running: its derived tables with their physical columns, the
// query that selects every fact it looks at, and the fold that turns a page of facts into
// one update per key (fold.cpp: the only place computation semantics are written; the table
// writers only add, set and derive columns as the plan says).
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "factstr/internal/backend.hpp"
#include "factstr/projections.hpp"
#include "factstr/query.hpp"

namespace factstr::projections::detail {

// How a stored column changes when a page's update for its row is written.
enum class Op {
    add,      // column += delta (count, sums, matched/satisfied/ignored counters)
    set,      // column = value (a state; a transform's copied field)
    average,  // column = sum / count of the columns `a` (sum) and `b` (count)
    every,    // column = b == 0 ? when_empty : a == b   (a: satisfied, b: matched)
    any,      // column = b == 0 ? when_empty : a > 0
};

struct PhysicalColumn {
    std::string name;
    ColumnType type;
    Op op;
    int a = -1, b = -1;  // indices of the columns a derived column is computed from
    bool when_empty = false;
};

struct TableSpec {
    std::string name;  // the final name; a rebuild writes `<name>__rebuild` first
    std::vector<KeyField> key;
    std::vector<PhysicalColumn> columns;  // after the key columns
    bool transform = false;

    std::string physical_name(bool rebuild) const { return rebuild ? name + "__rebuild" : name; }
};

// One row's change from a page: for aggregate tables, deltas (add), new values (set) and the
// values derived from the deltas (used when the row is inserted); for transform tables the
// row's new values, or its removal.
struct RowUpdate {
    std::vector<Cell> key;
    std::vector<Cell> values;
    bool remove = false;
};

struct PageDelta {
    std::vector<std::vector<RowUpdate>> tables;  // parallel to Plan::tables()
    std::size_t facts = 0;                       // facts of the page that were folded
    bool empty() const {
        for (const auto& rows : tables)
            if (!rows.empty()) return false;
        return true;
    }
};

// A fact the projection cannot apply (a missing key, a non-numeric amount, an overflow).
class FoldFailure : public std::runtime_error {
  public:
    FoldFailure(SequenceNumber position, const std::string& message)
        : std::runtime_error(message), position_(position) {}
    SequenceNumber position() const { return position_; }

  private:
    SequenceNumber position_;
};

class Plan {
  public:
    explicit Plan(Projection projection);

    const Projection& projection() const { return projection_; }
    const std::string& name() const { return projection_.name; }
    const std::string& fingerprint() const { return fingerprint_; }
    const std::string& declaration_json() const { return declaration_json_; }
    const EventQuery& union_query() const { return union_query_; }
    const std::vector<TableSpec>& tables() const { return tables_; }
    bool has_state_machine() const { return !state_columns_.empty(); }

    // Current stored values of a row of the aggregate table, when it exists.
    using RowLookup = std::function<std::optional<std::vector<Cell>>(const std::vector<Cell>& key)>;

    // Folds a page into one update per key and table. State machines need the states the
    // rows are in: `lookup` is asked once per key not seen before (see StateCache).
    PageDelta fold(const BatchPage& page, const RowLookup& lookup);

    // Forget the cached states (after a failed write, or when another writer may have moved
    // them). `authoritative`: the table was empty when the cache started, so a key not in
    // the cache is known to be in the initial state without asking.
    void reset_state_cache(bool authoritative);

  private:
    struct Aggregate;  // one computation of the aggregate table, compiled (computations.hpp)
    struct TransformPlan;
    class Fold;  // one page being folded (fold.cpp)

    Projection projection_;
    std::string fingerprint_;
    std::string declaration_json_;
    EventQuery union_query_;
    std::vector<TableSpec> tables_;
    std::vector<Aggregate> aggregates_;
    std::vector<TransformPlan> transforms_;
    std::vector<int> state_columns_;  // indices of state columns in the aggregate table
    std::vector<Cell> initial_values_;

    std::unordered_map<std::string, std::vector<std::string>> state_cache_;
    bool state_cache_authoritative_ = false;

  public:
    ~Plan();
    Plan(Plan&&) noexcept;
};

// The column a payload field is stored in unless one is named (declaration.cpp).
std::string default_column(std::string_view field);

// Recomputes a row's derived columns (average, every, any) from the columns they are kept
// as (sum and count; satisfied and matched). The SQL writers do the same in their upserts
// (Dialect::update_assignments).
void derive_columns(const TableSpec& table, std::span<Cell> values);

// "text" form of a key for maps and messages.
std::string key_text(const std::vector<Cell>& key);

}  // namespace factstr::projections::detail
