// Where derived tables live: the store's own database (SQLite, PostgreSQL), or the memory
// engine's database (DatabaseLocation::memory) for a memory store. One object per connection,
// used by one thread at a time. Every write of a page commits together with the projection's
// checkpoint, fenced by the checkpoint it started from, the declaration's fingerprint and the lease
// owner: a writer that lost its lease (or whose declaration was replaced) writes nothing.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "factstr/store.hpp"
#include "plan.hpp"

namespace factstr::projections::detail {

// A projection's row in factstr_projections.
struct MetaRow {
    std::string name;
    std::string fingerprint;
    std::string declaration;
    SequenceNumber checkpoint = 0;
    std::optional<std::string> error;
    std::optional<SequenceNumber> error_position;
    std::optional<std::string> owner;  // set only while the lease is live
    std::optional<std::string> rebuild_fingerprint;
    std::optional<SequenceNumber> rebuild_checkpoint;
};

// What a page write must find before it writes: the projection still at `from` (its
// checkpoint, or rebuild checkpoint), of `fingerprint`, leased by `worker` (not checked for
// rebuilds, which are not leased).
struct Fence {
    SequenceNumber from = 0;
    SequenceNumber to = 0;
    std::string worker;
    std::string fingerprint;
    bool rebuild = false;
};

class DerivedTables {
  public:
    virtual ~DerivedTables() = default;

    // Creates the projection's tables and meta row when it is new; returns its meta row.
    // Throws StoreError(declaration_changed) when another declaration holds the name, and
    // InvalidInput(invalid_declaration) when a table name is taken by something else.
    virtual MetaRow register_projection(const Plan& plan) = 0;
    virtual std::vector<MetaRow> meta() = 0;

    // Workers announce themselves on every lease round; returns how many workers (this one
    // included) are live, so that each takes a fair share. `leave` removes the worker.
    virtual std::size_t heartbeat(const std::string& worker, std::chrono::milliseconds lease) = 0;
    virtual void leave(const std::string& worker) = 0;

    // Leases. claim: takes up to `limit` of `names` that are free, expired or already ours;
    // returns the names it took. renew: extends ours; returns those still held. release: frees
    // ours.
    virtual std::vector<std::string> claim(const std::vector<std::string>& names,
                                           const std::string& worker,
                                           std::chrono::milliseconds lease, std::size_t limit) = 0;
    virtual std::vector<std::string> renew(const std::vector<std::string>& names,
                                           const std::string& worker,
                                           std::chrono::milliseconds lease) = 0;
    virtual void release(const std::vector<std::string>& names, const std::string& worker) = 0;

    // Writes a page's updates and moves the checkpoint, in one transaction. False (nothing
    // written) when the fence does not hold.
    virtual bool apply(const Plan& plan, const PageDelta& delta, const Fence& fence) = 0;
    // Records why a projection stopped (kept until it next applies a page).
    virtual void record_failure(const std::string& name, const std::string& message,
                                SequenceNumber position) = 0;

    // The stored non-key values of a row of `table`, when it exists.
    virtual std::optional<std::vector<Cell>> load_row(const TableSpec& table,
                                                      const std::vector<Cell>& key,
                                                      bool rebuild) = 0;
    virtual bool is_empty(const TableSpec& table, bool rebuild) = 0;
    virtual Table read(const TableSpec& table) = 0;

    // Rebuilds: fresh `<table>__rebuild` tables and a rebuild checkpoint at 0; then the
    // switch-over: old tables dropped, the rebuilt ones renamed, declaration, fingerprint and
    // checkpoint replaced, the lease freed — one transaction.
    virtual void begin_rebuild(const Plan& plan) = 0;
    virtual void finish_rebuild(const Plan& plan, SequenceNumber checkpoint,
                                const std::vector<std::string>& old_tables) = 0;
};

// The columns of a derived table as read() returns them: key columns, then the others; the
// Table is empty and its types (for turning stored values back into cells) are given.
Table empty_table(const TableSpec& table, std::vector<ColumnType>& types);

// Opens a connection to the store's database for derived tables.
std::unique_ptr<DerivedTables> open_tables(Store& store);

std::unique_ptr<DerivedTables> open_memory_tables(const DatabaseLocation& location);
std::unique_ptr<DerivedTables> open_sqlite_tables(const DatabaseLocation& location);
std::unique_ptr<DerivedTables> open_postgres_tables(const DatabaseLocation& location);

// Names of the store's own tables, never usable as a derived table.
bool reserved_table_name(std::string_view name);

// The refusals every DerivedTables gives at registration, worded once.
[[noreturn]] void refuse_changed_declaration(const Plan& plan,
                                             const std::string& stored_fingerprint);
[[noreturn]] void refuse_taken_table(const Plan& plan, const std::string& table,
                                     const std::string& where);

// SQL shared by the SQLite and PostgreSQL writers.
struct Dialect {
    bool postgres = false;
    const char* type_name(ColumnType type) const;
    std::string quote(std::string_view identifier) const;  // "identifier"
    std::string create_table(const TableSpec& table, bool rebuild) const;
    // SELECT of every column (key columns first), ordered by the key: what read() returns.
    std::string select_all(const TableSpec& table) const;
    // "col = <expression>" assignments of ON CONFLICT DO UPDATE (target aliased `cur`).
    std::string update_assignments(const TableSpec& table) const;
};

}  // namespace factstr::projections::detail
