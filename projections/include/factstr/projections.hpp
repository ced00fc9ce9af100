// factstr::projections — derived data declared over the log and kept current by projectors
// (DESIGN.md §5). A Projection names a derived table, the payload fields that key its rows,
// and the computations that fill its columns. An Engine runs projections over a Store: each
// projection is a stream from its checkpoint whose table writes and checkpoint commit in one
// transaction of the store's own database (SQLite file, PostgreSQL database; memory tables for
// the memory store), so a crash at any instant neither loses nor double-counts a fact.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "factstr/errors.hpp"
#include "factstr/store.hpp"
#include "factstr/types.hpp"

namespace factstr::projections {

// SQL type of a derived column: integer (SQLite INTEGER / PostgreSQL bigint), real (REAL /
// double precision), text (TEXT / text), boolean (INTEGER 0/1 / boolean).
enum class ColumnType { integer, real, text, boolean };
const char* to_string(ColumnType type) noexcept;

// A payload field that keys rows: `field` is a top-level name or a dotted path ("a.b"),
// `column` the derived column (default: the field in snake_case, dots as '_':
// accountId -> account_id).
struct KeyField {
    std::string field;
    ColumnType type = ColumnType::text;
    std::string column;
};

// The number of matching facts per key.
struct Count {};
// The sum of a numeric payload field over matching facts per key. An integer sum refuses
// fractional values and overflow (the projection fails, naming the fact).
struct Summation {
    std::string field;
    ColumnType type = ColumnType::real;
};
// One term of a weighted sum: facts matching `filter` add weight × (field value, or
// `constant` when no field is given).
struct WeightedTerm {
    EventFilter filter;
    double weight = 1;
    std::optional<std::string> field;
    double constant = 1;
};
struct WeightedSummation {
    std::vector<WeightedTerm> terms;
    ColumnType type = ColumnType::real;
};
// The mean of a numeric field, kept as `<column>_sum` and `<column>_count` beside `<column>`
// so it stays exact under increments. NULL until a fact matched.
struct Average {
    std::string field;
};
// Whether every / any matching fact's payload matches `predicate` (a payload predicate, JSON
// subset match as in queries). `when_empty` is the value while no fact matched. Kept as
// `<column>_matched` and `<column>_satisfied` counts beside `<column>`.
struct Every {
    std::string predicate;
    bool when_empty = true;
};
struct Any {
    std::string predicate;
    bool when_empty = false;
};
// A row in the table `<projection>_<column>` per matching fact, keyed by `key` (default: the
// projection's key): the columns are copied from payload fields (NULL when absent), an
// existing row is replaced. A fact matching `remove_on` deletes the row with its key.
struct TransformColumn {
    std::string column;
    std::string field;
    ColumnType type = ColumnType::text;
};
struct Transform {
    std::vector<KeyField> key;
    std::vector<TransformColumn> columns;
    std::optional<EventFilter> remove_on;
};
// The current state per key. A fact matching a transition whose `from` contains the current
// state moves it to `to` (the first such transition wins); a fact that fits no transition
// from the current state leaves it unchanged and counts in `<column>_ignored`.
struct Transition {
    std::vector<std::string> from;
    EventFilter on;
    std::string to;
};
struct StateMachine {
    std::vector<std::string> states;
    std::string initial;
    std::vector<Transition> transitions;
};

using ComputationKind =
    std::variant<Count, Summation, WeightedSummation, Average, Every, Any, Transform, StateMachine>;

struct Computation {
    std::string column;
    // The facts it looks at. WeightedSummation and StateMachine use their terms' and
    // transitions' filters instead (this one, if set, must match too).
    std::optional<EventFilter> filter;
    ComputationKind kind;
};

// A filter by event types (and optionally one payload predicate), for the builder.
EventFilter on(std::vector<std::string> event_types,
               std::optional<std::string> payload_predicate = std::nullopt);

struct Projection {
    std::string name;           // [a-z_][a-z0-9_]*, at most 48 characters: the derived table's name
    std::vector<KeyField> key;  // empty: one global row
    std::vector<Computation> computations;

    explicit Projection(std::string projection_name = {}) : name(std::move(projection_name)) {}

    // Builder: each returns *this.
    Projection& key_by(std::string field, ColumnType type = ColumnType::text);
    Projection& count(std::string column, EventFilter filter);
    Projection& sum(std::string column, EventFilter filter, std::string field,
                    ColumnType type = ColumnType::real);
    Projection& weighted_sum(std::string column, std::vector<WeightedTerm> terms,
                             ColumnType type = ColumnType::real);
    Projection& average(std::string column, EventFilter filter, std::string field);
    Projection& every(std::string column, EventFilter filter, std::string predicate,
                      bool when_empty = true);
    Projection& any(std::string column, EventFilter filter, std::string predicate,
                    bool when_empty = false);
    Projection& transform(std::string table_suffix, EventFilter filter, Transform transform);
    Projection& state_machine(std::string column, StateMachine machine);
};

// The JSON form (the CLI and the Node binding use it):
// {"name":"accounts","key":["accountId"],"computations":[
//   {"column":"deposits","kind":"count","filter":{"event_types":["deposited"]}},
//   {"column":"total","kind":"sum","field":"amount","type":"integer","filter":{…}},
//   {"column":"balance","kind":"weighted_sum","type":"integer","terms":[
//       {"filter":{…},"weight":1,"field":"amount"},{"filter":{…},"weight":-1,"field":"amount"}]},
//   {"column":"mean","kind":"average","field":"amount","filter":{…}},
//   {"column":"all_small","kind":"every","predicate":{"size":"s"},"when_empty":true,"filter":{…}},
//   {"column":"status","kind":"state_machine","states":["open","closed"],"initial":"open",
//       "transitions":[{"from":["open"],"on":{"event_types":["closed"]},"to":"closed"}]},
//   {"column":"rows","kind":"transform","filter":{…},"key":[…],
//       "columns":[{"column":"title","field":"title","type":"text"}],"remove_on":{…}}]}
// A key entry is a field name or {"field":…,"type":…,"column":…}. A filter is an EventFilter
// in the query JSON form. Throws InvalidInput(invalid_declaration) naming the place.
Projection parse_projection(std::string_view json_text);
// Several projections: one object or an array of them.
std::vector<Projection> parse_projections(std::string_view json_text);
// Canonical JSON (defaults filled in): parse_projection(to_json(p)) has p's fingerprint.
std::string to_json(const Projection& projection);

// Checks a declaration: names, a column declared twice, an unknown state, an empty
// weighted sum, an invalid predicate or filter. Throws InvalidInput(invalid_declaration)
// naming the projection and the place. Engine::add and parse_projection call it.
void validate(const Projection& projection);
// Hex digest of the canonical JSON: what the engine compares to refuse running a changed
// declaration against old derived data.
std::string fingerprint(const Projection& projection);

// A derived value read back.
using Cell = std::variant<std::monostate, std::int64_t, double, std::string, bool>;
struct Table {
    std::vector<std::string> columns;
    std::vector<std::vector<Cell>> rows;  // ordered by the key columns

    // The index of a column; throws InvalidInput when absent.
    std::size_t column(std::string_view name) const;
};

struct ProjectionStatus {
    enum class State { running, caught_up, failed, rebuilding, stopped };
    std::string name;
    std::string fingerprint;
    State state = State::stopped;
    SequenceNumber checkpoint = 0;  // every fact up to here is in the derived tables
    SequenceNumber head = 0;
    std::uint64_t lag_facts = 0;  // head - checkpoint
    // Age of the oldest fact not yet applied (zero when caught up).
    std::chrono::milliseconds lag_time{0};
    std::optional<std::string> error;                  // why it failed
    std::optional<SequenceNumber> error_position;      // the fact it failed on
    std::optional<std::string> owner;                  // the worker holding it (a live lease)
    std::optional<SequenceNumber> rebuild_checkpoint;  // progress of a rebuild in flight
};
const char* to_string(ProjectionStatus::State state) noexcept;

struct EngineOptions {
    // Names this worker in leases and status; default host:pid:random.
    std::string worker_id;
    // A worker that stops renewing loses its projections after this long (PostgreSQL and
    // SQLite; the memory store has one process).
    std::chrono::milliseconds lease{10000};
    // Facts read and applied per transaction at most (batches are never split). Larger pages
    // mean fewer upserts while catching up (one per key per page).
    std::size_t page_facts = 65536;
};

// Runs projections over a store. The derived tables live in the store's database. Any number
// of engines (threads, processes, hosts) may run the same projections: leases give each
// projection to one engine at a time, and another takes it over when the holder stops
// renewing. Thread-safe.
class Engine {
  public:
    explicit Engine(Store& store, EngineOptions options = {});
    ~Engine();  // stop()
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // Adds a projection to run. Validates it; creates its tables and records its fingerprint
    // when it is new. Throws InvalidInput(invalid_declaration), and
    // StoreError(declaration_changed) when the store holds derived data of another
    // declaration under that name (rebuild() replaces it).
    void add(Projection projection);
    // Starts projecting: claims every added projection that no live worker holds, and keeps
    // claiming expired leases every lease/3.
    void start();
    // Stops projecting and releases the leases; applied facts stay applied.
    void stop();

    // Waits until every projection added to this engine has applied the log up to the head at
    // the call, has failed, or is held by another worker (whose to advance it). Returns false
    // on timeout.
    bool wait_caught_up(std::chrono::milliseconds timeout);

    // Builds `projection` from the log into fresh tables while the old version keeps serving,
    // then switches over atomically when caught up. Blocking. A running old version stops
    // at the switch (its declaration changed); start the new one with add()/start().
    void rebuild(const Projection& projection);

    std::vector<ProjectionStatus> status() const;
    // Rows of a derived table (a projection's name, or `<projection>_<transform column>`).
    Table read(std::string_view table) const;

  private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

// Status of every projection recorded in the store, whether or not an engine runs here.
std::vector<ProjectionStatus> status(Store& store);
// The declarations recorded in the store (their canonical JSON), by name.
std::vector<std::pair<std::string, std::string>> declarations(Store& store);

}  // namespace factstr::projections
