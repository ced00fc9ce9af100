// Derived tables in the store's PostgreSQL database, on a connection of their own. A page is
// written with one multi-row upsert per table (unnest of one array per column), and leases are
// claimed with FOR UPDATE SKIP LOCKED on the server's clock, so workers on several hosts agree.
#include <cstdio>
#include <cstdlib>

#include "factstr/database/postgres_connection.hpp"
#include "tables.hpp"

namespace factstr::projections::detail {
namespace {

using postgres::Connection;
using postgres::Conninfo;
using postgres::get_text;
using postgres::Result;

constexpr const char* kMetaSchema = R"sql(
CREATE TABLE IF NOT EXISTS factstr_projections (
  name text PRIMARY KEY,
  fingerprint text NOT NULL,
  declaration text NOT NULL,
  checkpoint bigint NOT NULL DEFAULT 0,
  error text,
  error_position bigint,
  owner text,
  lease_until timestamptz,
  rebuild_fingerprint text,
  rebuild_declaration text,
  rebuild_checkpoint bigint,
  updated_at timestamptz
);
CREATE TABLE IF NOT EXISTS factstr_projection_workers (
  worker text PRIMARY KEY,
  lease_until timestamptz NOT NULL
))sql";

// Serializes schema changes of derived tables between workers (CREATE TABLE IF NOT EXISTS
// alone races in PostgreSQL).
constexpr const char* kSchemaLock = "SELECT pg_advisory_xact_lock(7726165811090452273)";

Cell parse_cell(const PGresult* result, int row, int column, ColumnType type) {
    if (PQgetisnull(result, row, column)) return Cell();
    const std::string_view text = get_text(result, row, column);
    switch (type) {
        case ColumnType::integer:
            return Cell(static_cast<std::int64_t>(std::strtoll(text.data(), nullptr, 10)));
        case ColumnType::real:
            return Cell(std::strtod(text.data(), nullptr));
        case ColumnType::text:
            return Cell(std::string(text));
        case ColumnType::boolean:
            return Cell(text == "t");
    }
    return Cell();
}

class PostgresTables final : public DerivedTables {
  public:
    explicit PostgresTables(const DatabaseLocation& location)
        : db_(Conninfo::parse(location.target)) {
        transaction([&] {
            db_.exec(kSchemaLock, "locking the projection schema");
            db_.exec(kMetaSchema, "creating factstr_projections");
        });
    }

    MetaRow register_projection(const Plan& plan) override {
        MetaRow result;
        transaction([&] {
            db_.exec(kSchemaLock, "locking the projection schema");
            auto existing = meta_row(plan.name());
            if (existing) {
                if (existing->fingerprint != plan.fingerprint())
                    refuse_changed_declaration(plan, existing->fingerprint);
            } else {
                for (const TableSpec& table : plan.tables()) {
                    Result found = db_.exec_params(
                        "SELECT 1 FROM pg_class WHERE relname = $1 AND relnamespace ="
                        " (SELECT oid FROM pg_namespace WHERE nspname = current_schema())",
                        {table.name}, "looking for a table");
                    if (reserved_table_name(table.name) || PQntuples(found.get()) > 0)
                        refuse_taken_table(plan, table.name, db_.info().description());
                }
                db_.exec_params(
                    "INSERT INTO factstr_projections (name, fingerprint, declaration, checkpoint,"
                    " updated_at) VALUES ($1, $2, $3, 0, now())",
                    {plan.name(), plan.fingerprint(), plan.declaration_json()},
                    "registering a projection");
            }
            for (const TableSpec& table : plan.tables())
                db_.exec(dialect_.create_table(table, false).c_str(), "creating a derived table");
            result = *meta_row(plan.name());
        });
        return result;
    }

    std::vector<MetaRow> meta() override {
        db_.ensure_ok();
        Result rows = db_.exec(
            "SELECT name, fingerprint, declaration, checkpoint, error, error_position,"
            " CASE WHEN lease_until >= clock_timestamp() THEN owner END, rebuild_fingerprint,"
            " rebuild_checkpoint FROM factstr_projections ORDER BY name",
            "reading factstr_projections");
        std::vector<MetaRow> meta;
        const PGresult* r = rows.get();
        for (int i = 0; i < PQntuples(r); ++i) {
            MetaRow row;
            row.name = get_text(r, i, 0);
            row.fingerprint = get_text(r, i, 1);
            row.declaration = get_text(r, i, 2);
            row.checkpoint = static_cast<SequenceNumber>(postgres::get_int(r, i, 3));
            if (!PQgetisnull(r, i, 4)) row.error = std::string(get_text(r, i, 4));
            if (!PQgetisnull(r, i, 5))
                row.error_position = static_cast<SequenceNumber>(postgres::get_int(r, i, 5));
            if (!PQgetisnull(r, i, 6)) row.owner = std::string(get_text(r, i, 6));
            if (!PQgetisnull(r, i, 7)) row.rebuild_fingerprint = std::string(get_text(r, i, 7));
            if (!PQgetisnull(r, i, 8))
                row.rebuild_checkpoint = static_cast<SequenceNumber>(postgres::get_int(r, i, 8));
            meta.push_back(std::move(row));
        }
        return meta;
    }

    std::size_t heartbeat(const std::string& worker, std::chrono::milliseconds lease) override {
        db_.ensure_ok();
        Result rows = db_.exec_params(
            "WITH beat AS (INSERT INTO factstr_projection_workers (worker, lease_until)"
            " VALUES ($1, clock_timestamp() + $2::bigint * interval '1 millisecond')"
            " ON CONFLICT (worker) DO UPDATE SET lease_until = excluded.lease_until RETURNING 1),"
            " pruned AS (DELETE FROM factstr_projection_workers WHERE worker <> $1"
            " AND lease_until < clock_timestamp() RETURNING 1)"
            " SELECT 1 + count(*) FROM factstr_projection_workers WHERE worker <> $1"
            " AND lease_until >= clock_timestamp()",
            {worker, std::to_string(lease.count())}, "announcing a worker");
        return static_cast<std::size_t>(postgres::get_int(rows.get(), 0, 0));
    }

    void leave(const std::string& worker) override {
        db_.ensure_ok();
        db_.exec_params("DELETE FROM factstr_projection_workers WHERE worker = $1", {worker},
                        "removing a worker");
    }

    std::vector<std::string> claim(const std::vector<std::string>& names, const std::string& worker,
                                   std::chrono::milliseconds lease, std::size_t limit) override {
        db_.ensure_ok();
        // Rows another worker is claiming right now are skipped, not waited for.
        Result rows = db_.exec_params(
            "WITH free AS (SELECT name FROM factstr_projections WHERE name = ANY($1::text[])"
            " AND (owner IS NULL OR owner = $2 OR lease_until < clock_timestamp())"
            " ORDER BY name LIMIT $4 FOR UPDATE SKIP LOCKED)"
            " UPDATE factstr_projections p SET owner = $2,"
            " lease_until = clock_timestamp() + $3::bigint * interval '1 millisecond'"
            " FROM free WHERE p.name = free.name RETURNING p.name",
            {names_array(names), worker, std::to_string(lease.count()), std::to_string(limit)},
            "claiming projections");
        return column_of(rows);
    }

    std::vector<std::string> renew(const std::vector<std::string>& names, const std::string& worker,
                                   std::chrono::milliseconds lease) override {
        db_.ensure_ok();
        Result rows = db_.exec_params(
            "UPDATE factstr_projections SET"
            " lease_until = clock_timestamp() + $3::bigint * interval '1 millisecond'"
            " WHERE name = ANY($1::text[]) AND owner = $2 RETURNING name",
            {names_array(names), worker, std::to_string(lease.count())}, "renewing leases");
        return column_of(rows);
    }

    void release(const std::vector<std::string>& names, const std::string& worker) override {
        db_.ensure_ok();
        db_.exec_params(
            "UPDATE factstr_projections SET owner = NULL, lease_until = NULL"
            " WHERE name = ANY($1::text[]) AND owner = $2",
            {names_array(names), worker}, "releasing leases");
    }

    bool apply(const Plan& plan, const PageDelta& delta, const Fence& fence) override {
        bool applied = false;
        transaction(
            [&] {
                Result fenced =
                    fence.rebuild
                        ? db_.exec_params(
                              "UPDATE factstr_projections SET rebuild_checkpoint = $1,"
                              " updated_at = now() WHERE name = $2 AND rebuild_checkpoint = $3"
                              " AND rebuild_fingerprint = $4",
                              {std::to_string(fence.to), plan.name(), std::to_string(fence.from),
                               fence.fingerprint},
                              "moving a rebuild checkpoint")
                        : db_.exec_params(
                              "UPDATE factstr_projections SET checkpoint = $1, updated_at = now(),"
                              " error = NULL, error_position = NULL WHERE name = $2"
                              " AND checkpoint = $3 AND fingerprint = $4 AND owner = $5",
                              {std::to_string(fence.to), plan.name(), std::to_string(fence.from),
                               fence.fingerprint, fence.worker},
                              "moving a projection checkpoint");
                if (std::string_view(PQcmdTuples(fenced.get())) != "1") return;
                for (std::size_t t = 0; t < delta.tables.size();
                     ++t)  // none: a checkpoint-only write
                    write_rows(plan.tables()[t], delta.tables[t], fence.rebuild);
                applied = true;
            },
            [&] { return applied; });
        return applied;
    }

    void record_failure(const std::string& name, const std::string& message,
                        SequenceNumber position) override {
        db_.ensure_ok();
        db_.exec_params(
            "UPDATE factstr_projections SET error = $1, error_position = $2, updated_at = now()"
            " WHERE name = $3",
            {message, std::to_string(position), name}, "recording a projection failure");
    }

    std::optional<std::vector<Cell>> load_row(const TableSpec& table, const std::vector<Cell>& key,
                                              bool rebuild) override {
        db_.ensure_ok();
        std::string sql = "SELECT ";
        for (std::size_t c = 0; c < table.columns.size(); ++c)
            sql += (c ? ", " : "") + dialect_.quote(table.columns[c].name);
        sql += " FROM " + dialect_.quote(table.physical_name(rebuild)) + " WHERE ";
        std::vector<std::optional<std::string>> params;
        for (std::size_t k = 0; k < table.key.size(); ++k) {
            sql += (k ? " AND " : "") + dialect_.quote(table.key[k].column) + " = $" +
                   std::to_string(k + 1);
            params.push_back(text_of(key[k]));
        }
        Result rows = db_.exec_params(sql, params, "reading a derived row");
        if (PQntuples(rows.get()) == 0) return std::nullopt;
        std::vector<Cell> values;
        for (std::size_t c = 0; c < table.columns.size(); ++c)
            values.push_back(parse_cell(rows.get(), 0, static_cast<int>(c), table.columns[c].type));
        return values;
    }

    bool is_empty(const TableSpec& table, bool rebuild) override {
        db_.ensure_ok();
        const std::string sql =
            "SELECT 1 FROM " + dialect_.quote(table.physical_name(rebuild)) + " LIMIT 1";
        Result rows = db_.exec(sql.c_str(), "reading a derived table");
        return PQntuples(rows.get()) == 0;
    }

    Table read(const TableSpec& spec) override {
        db_.ensure_ok();
        std::vector<ColumnType> types;
        Table table = empty_table(spec, types);
        const std::string sql = dialect_.select_all(spec);
        Result rows = db_.exec(sql.c_str(), "reading a derived table");
        for (int r = 0; r < PQntuples(rows.get()); ++r) {
            std::vector<Cell> row;
            for (std::size_t c = 0; c < types.size(); ++c)
                row.push_back(parse_cell(rows.get(), r, static_cast<int>(c), types[c]));
            table.rows.push_back(std::move(row));
        }
        return table;
    }

    void begin_rebuild(const Plan& plan) override {
        transaction([&] {
            db_.exec(kSchemaLock, "locking the projection schema");
            for (const TableSpec& table : plan.tables()) {
                db_.exec(
                    ("DROP TABLE IF EXISTS " + dialect_.quote(table.physical_name(true))).c_str(),
                    "dropping an old rebuild table");
                db_.exec(dialect_.create_table(table, true).c_str(), "creating a rebuild table");
            }
            db_.exec_params(
                "UPDATE factstr_projections SET rebuild_fingerprint = $1, rebuild_declaration = $2,"
                " rebuild_checkpoint = 0 WHERE name = $3",
                {plan.fingerprint(), plan.declaration_json(), plan.name()}, "starting a rebuild");
        });
    }

    void finish_rebuild(const Plan& plan, SequenceNumber checkpoint,
                        const std::vector<std::string>& old_tables) override {
        transaction([&] {
            db_.exec(kSchemaLock, "locking the projection schema");
            for (const std::string& table : old_tables)
                db_.exec(("DROP TABLE IF EXISTS " + dialect_.quote(table)).c_str(),
                         "dropping the old derived table");
            for (const TableSpec& table : plan.tables())
                db_.exec(("ALTER TABLE " + dialect_.quote(table.physical_name(true)) +
                          " RENAME TO " + dialect_.quote(table.name))
                             .c_str(),
                         "switching to the rebuilt table");
            db_.exec_params(
                "UPDATE factstr_projections SET fingerprint = $1, declaration = $2,"
                " checkpoint = $3, error = NULL, error_position = NULL, owner = NULL,"
                " lease_until = NULL, rebuild_fingerprint = NULL, rebuild_declaration = NULL,"
                " rebuild_checkpoint = NULL, updated_at = now() WHERE name = $4",
                {plan.fingerprint(), plan.declaration_json(), std::to_string(checkpoint),
                 plan.name()},
                "switching over a rebuilt projection");
        });
    }

  private:
    static std::optional<std::string> text_of(const Cell& cell) {
        if (const auto* s = std::get_if<std::string>(&cell)) return *s;
        if (const auto* i = std::get_if<std::int64_t>(&cell)) return std::to_string(*i);
        if (const auto* b = std::get_if<bool>(&cell)) return std::string(*b ? "t" : "f");
        if (const auto* d = std::get_if<double>(&cell)) {
            char buffer[32];
            std::snprintf(buffer, sizeof buffer, "%.17g", *d);
            return std::string(buffer);
        }
        return std::nullopt;
    }

    static std::string names_array(const std::vector<std::string>& names) {
        std::string out = "{";
        for (std::size_t i = 0; i < names.size(); ++i) {
            if (i) out += ',';
            postgres::append_array_element(out, names[i]);
        }
        return out + "}";
    }

    static std::vector<std::string> column_of(const Result& rows) {
        std::vector<std::string> values;
        for (int i = 0; i < PQntuples(rows.get()); ++i)
            values.emplace_back(get_text(rows.get(), i, 0));
        return values;
    }

    std::optional<MetaRow> meta_row(const std::string& name) {
        for (MetaRow& row : meta())
            if (row.name == name) return std::move(row);
        return std::nullopt;
    }

    void write_rows(const TableSpec& table, const std::vector<RowUpdate>& rows, bool rebuild) {
        std::vector<const RowUpdate*> upserts, removals;
        for (const RowUpdate& row : rows)
            (row.remove ? removals : upserts).push_back(&row);
        const std::string name = dialect_.quote(table.physical_name(rebuild));
        auto literal = [](const std::vector<const RowUpdate*>& selected, std::size_t column,
                          bool key) {
            std::string out = "{";
            for (std::size_t r = 0; r < selected.size(); ++r) {
                if (r) out += ',';
                const Cell& cell = key ? selected[r]->key[column] : selected[r]->values[column];
                if (const auto* s = std::get_if<std::string>(&cell))
                    postgres::append_array_element(out, *s);  // quoted and escaped
                else
                    out += text_of(cell).value_or("NULL");
            }
            return out + "}";
        };
        std::string keys, unnest_keys;
        for (std::size_t k = 0; k < table.key.size(); ++k) {
            keys += (k ? ", " : "") + dialect_.quote(table.key[k].column);
            unnest_keys += (k ? ", " : "") + std::string("$") + std::to_string(k + 1) +
                           "::" + dialect_.type_name(table.key[k].type) + "[]";
        }
        if (!upserts.empty()) {
            std::vector<std::optional<std::string>> params;
            std::string columns = keys, unnest = unnest_keys;
            for (std::size_t k = 0; k < table.key.size(); ++k)
                params.push_back(literal(upserts, k, true));
            for (std::size_t c = 0; c < table.columns.size(); ++c) {
                columns += ", " + dialect_.quote(table.columns[c].name);
                unnest += ", $" + std::to_string(params.size() + 1) +
                          "::" + dialect_.type_name(table.columns[c].type) + "[]";
                params.push_back(literal(upserts, c, false));
            }
            db_.exec_params("INSERT INTO " + name + " AS cur (" + columns +
                                ") SELECT * FROM unnest(" + unnest + ") ON CONFLICT (" + keys +
                                ") DO UPDATE SET " + dialect_.update_assignments(table),
                            params, "writing derived rows");
        }
        if (!removals.empty()) {
            std::vector<std::optional<std::string>> params;
            for (std::size_t k = 0; k < table.key.size(); ++k)
                params.push_back(literal(removals, k, true));
            db_.exec_params("DELETE FROM " + name + " WHERE (" + keys +
                                ") IN (SELECT * FROM unnest(" + unnest_keys + "))",
                            params, "removing derived rows");
        }
    }

    template <class Fn>
    void transaction(Fn&& fn) {
        transaction(std::forward<Fn>(fn), [] { return true; });
    }
    template <class Fn, class Commit>
    void transaction(Fn&& fn, Commit&& commit) {
        db_.ensure_ok();
        db_.exec("BEGIN", "beginning a transaction");
        try {
            fn();
            db_.exec(commit() ? "COMMIT" : "ROLLBACK", "committing derived rows");
        } catch (...) {
            db_.rollback_quietly();
            throw;
        }
    }

    Connection db_;
    Dialect dialect_{true};
};

}  // namespace

std::unique_ptr<DerivedTables> open_postgres_tables(const DatabaseLocation& location) {
    return std::make_unique<PostgresTables>(location);
}

}  // namespace factstr::projections::detail
