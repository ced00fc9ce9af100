// Derived tables in the store's SQLite file, on a connection of their own.
#include <chrono>
#include <map>
#include <set>

#include "factstr/database/sqlite_connection.hpp"
#include "factstr/env.hpp"
#include "tables.hpp"

namespace factstr::projections::detail {
namespace {

using sqlite::Connection;
using sqlite::Resetting;
using sqlite::Statement;

constexpr const char* kMetaSchema = R"sql(
CREATE TABLE IF NOT EXISTS factstr_projections (
  name TEXT PRIMARY KEY,
  fingerprint TEXT NOT NULL,
  declaration TEXT NOT NULL,
  checkpoint INTEGER NOT NULL DEFAULT 0,
  error TEXT,
  error_position INTEGER,
  owner TEXT,
  lease_until INTEGER,
  rebuild_fingerprint TEXT,
  rebuild_declaration TEXT,
  rebuild_checkpoint INTEGER,
  updated_at INTEGER
);
CREATE TABLE IF NOT EXISTS factstr_projection_workers (
  worker TEXT PRIMARY KEY,
  lease_until INTEGER NOT NULL
))sql";

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               factstr::Env::system().now().time_since_epoch())
        .count();
}

void bind_cell(Statement& statement, int index, const Cell& cell) {
    if (const auto* i = std::get_if<std::int64_t>(&cell))
        statement.bind(index, *i);
    else if (const auto* d = std::get_if<double>(&cell))
        statement.bind(index, *d);
    else if (const auto* s = std::get_if<std::string>(&cell))
        statement.bind(index, std::string_view(*s));
    else if (const auto* b = std::get_if<bool>(&cell))
        statement.bind(index, std::int64_t{*b ? 1 : 0});
    else
        statement.bind_null(index);
}

Cell read_cell(const Statement& statement, int index, ColumnType type) {
    if (statement.is_null(index)) return Cell();
    switch (type) {
        case ColumnType::integer:
            return Cell(statement.integer(index));
        case ColumnType::real:
            return Cell(statement.real(index));
        case ColumnType::text:
            return Cell(std::string(statement.text(index)));
        case ColumnType::boolean:
            return Cell(statement.integer(index) != 0);
    }
    return Cell();
}

class SqliteTables final : public DerivedTables {
  public:
    explicit SqliteTables(const DatabaseLocation& location)
        : db_(location.target, SQLITE_OPEN_READWRITE, location.busy_timeout_ms) {
        // A process crash loses nothing in WAL with NORMAL; after a power loss the tables and
        // their checkpoint roll back together, and the facts are applied again from there.
        db_.exec("PRAGMA synchronous=NORMAL");
        write([&] { db_.exec(kMetaSchema); });
    }

    MetaRow register_projection(const Plan& plan) override {
        MetaRow result;
        write([&] {
            auto existing = meta_row(plan.name());
            if (existing) {
                if (existing->fingerprint != plan.fingerprint())
                    refuse_changed_declaration(plan, existing->fingerprint);
            } else {
                for (const TableSpec& table : plan.tables())
                    if (reserved_table_name(table.name) || table_exists(table.name))
                        refuse_taken_table(plan, table.name, "sqlite:" + db_.path());
                Resetting insert(db_.statement(
                    "INSERT INTO factstr_projections (name, fingerprint, declaration, checkpoint,"
                    " updated_at) VALUES (?, ?, ?, 0, ?)"));
                insert->bind(1, plan.name())
                    .bind(2, plan.fingerprint())
                    .bind(3, plan.declaration_json())
                    .bind(4, now_ms());
                insert->run();
            }
            for (const TableSpec& table : plan.tables())
                db_.exec(dialect_.create_table(table, false).c_str());
            result = *meta_row(plan.name());
        });
        return result;
    }

    std::vector<MetaRow> meta() override {
        std::vector<MetaRow> rows;
        Resetting select(db_.statement(kSelectMeta));
        select->bind(1, now_ms());
        while (select->step())
            rows.push_back(to_meta(*select));
        return rows;
    }

    std::size_t heartbeat(const std::string& worker, std::chrono::milliseconds lease) override {
        std::size_t live = 0;
        write([&] {
            const std::int64_t now = now_ms();
            Resetting upsert(db_.statement(
                "INSERT INTO factstr_projection_workers (worker, lease_until) VALUES (?1, ?2)"
                " ON CONFLICT (worker) DO UPDATE SET lease_until = excluded.lease_until"));
            upsert->bind(1, std::string_view(worker)).bind(2, now + lease.count());
            upsert->run();
            Resetting prune(
                db_.statement("DELETE FROM factstr_projection_workers WHERE lease_until < ?1"));
            prune->bind(1, now);
            prune->run();
            Resetting count(db_.statement("SELECT count(*) FROM factstr_projection_workers"));
            if (count->step()) live = static_cast<std::size_t>(count->integer(0));
        });
        return std::max<std::size_t>(live, 1);
    }

    void leave(const std::string& worker) override {
        write([&] {
            Resetting remove(
                db_.statement("DELETE FROM factstr_projection_workers WHERE worker = ?1"));
            remove->bind(1, std::string_view(worker));
            remove->run();
        });
    }

    std::vector<std::string> claim(const std::vector<std::string>& names, const std::string& worker,
                                   std::chrono::milliseconds lease, std::size_t limit) override {
        std::vector<std::string> held;
        write([&] {
            const std::int64_t now = now_ms();
            for (const std::string& name : names) {
                if (held.size() >= limit) break;
                Resetting update(db_.statement(
                    "UPDATE factstr_projections SET owner = ?1, lease_until = ?2 WHERE name = ?3"
                    " AND (owner IS NULL OR owner = ?1 OR lease_until < ?4)"));
                update->bind(1, std::string_view(worker))
                    .bind(2, now + lease.count())
                    .bind(3, std::string_view(name))
                    .bind(4, now);
                update->run();
                if (sqlite3_changes(db_.handle()) == 1) held.push_back(name);
            }
        });
        return held;
    }

    std::vector<std::string> renew(const std::vector<std::string>& names, const std::string& worker,
                                   std::chrono::milliseconds lease) override {
        std::vector<std::string> held;
        write([&] {
            for (const std::string& name : names) {
                Resetting update(
                    db_.statement("UPDATE factstr_projections SET lease_until = ?1 WHERE name = ?2 "
                                  "AND owner = ?3"));
                update->bind(1, now_ms() + lease.count())
                    .bind(2, std::string_view(name))
                    .bind(3, std::string_view(worker));
                update->run();
                if (sqlite3_changes(db_.handle()) == 1) held.push_back(name);
            }
        });
        return held;
    }

    void release(const std::vector<std::string>& names, const std::string& worker) override {
        write([&] {
            for (const std::string& name : names) {
                Resetting update(
                    db_.statement("UPDATE factstr_projections SET owner = NULL, lease_until = NULL"
                                  " WHERE name = ?1 AND owner = ?2"));
                update->bind(1, std::string_view(name)).bind(2, std::string_view(worker));
                update->run();
            }
        });
    }

    bool apply(const Plan& plan, const PageDelta& delta, const Fence& fence) override {
        bool applied = false;
        write(
            [&] {
                Resetting update(db_.statement(
                    fence.rebuild
                        ? "UPDATE factstr_projections SET rebuild_checkpoint = ?1, updated_at = ?2"
                          " WHERE name = ?3 AND rebuild_checkpoint = ?4 AND rebuild_fingerprint = "
                          "?5"
                        : "UPDATE factstr_projections SET checkpoint = ?1, updated_at = ?2,"
                          " error = NULL, error_position = NULL"
                          " WHERE name = ?3 AND checkpoint = ?4 AND fingerprint = ?5 AND owner = "
                          "?6"));
                update->bind(1, static_cast<std::int64_t>(fence.to))
                    .bind(2, now_ms())
                    .bind(3, plan.name())
                    .bind(4, static_cast<std::int64_t>(fence.from))
                    .bind(5, std::string_view(fence.fingerprint));
                if (!fence.rebuild) update->bind(6, std::string_view(fence.worker));
                update->run();
                if (sqlite3_changes(db_.handle()) != 1) return;  // fenced off: roll back
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
        write([&] {
            Resetting update(db_.statement(
                "UPDATE factstr_projections SET error = ?1, error_position = ?2, updated_at = ?3"
                " WHERE name = ?4"));
            update->bind(1, std::string_view(message))
                .bind(2, static_cast<std::int64_t>(position))
                .bind(3, now_ms())
                .bind(4, std::string_view(name));
            update->run();
        });
    }

    std::optional<std::vector<Cell>> load_row(const TableSpec& table, const std::vector<Cell>& key,
                                              bool rebuild) override {
        Statement& select = statement(table, rebuild, Kind::select);
        Resetting reset(select);
        for (std::size_t k = 0; k < key.size(); ++k)
            bind_cell(select, static_cast<int>(k + 1), key[k]);
        if (!select.step()) return std::nullopt;
        std::vector<Cell> values;
        for (std::size_t c = 0; c < table.columns.size(); ++c)
            values.push_back(read_cell(select, static_cast<int>(c), table.columns[c].type));
        return values;
    }

    bool is_empty(const TableSpec& table, bool rebuild) override {
        const std::string sql =
            "SELECT 1 FROM " + dialect_.quote(table.physical_name(rebuild)) + " LIMIT 1";
        Statement& select = db_.statement(stable(sql));
        Resetting reset(select);
        return !select.step();
    }

    Table read(const TableSpec& spec) override {
        std::vector<ColumnType> types;
        Table table = empty_table(spec, types);
        const std::string sql = dialect_.select_all(spec);
        Statement& select = db_.statement(stable(sql));
        Resetting reset(select);
        while (select.step()) {
            std::vector<Cell> row;
            for (std::size_t c = 0; c < types.size(); ++c)
                row.push_back(read_cell(select, static_cast<int>(c), types[c]));
            table.rows.push_back(std::move(row));
        }
        return table;
    }

    void begin_rebuild(const Plan& plan) override {
        write([&] {
            for (const TableSpec& table : plan.tables()) {
                db_.exec(
                    ("DROP TABLE IF EXISTS " + dialect_.quote(table.physical_name(true))).c_str());
                db_.exec(dialect_.create_table(table, true).c_str());
            }
            Resetting update(db_.statement(
                "UPDATE factstr_projections SET rebuild_fingerprint = ?1, rebuild_declaration = ?2,"
                " rebuild_checkpoint = 0 WHERE name = ?3"));
            update->bind(1, plan.fingerprint())
                .bind(2, plan.declaration_json())
                .bind(3, plan.name());
            update->run();
        });
    }

    void finish_rebuild(const Plan& plan, SequenceNumber checkpoint,
                        const std::vector<std::string>& old_tables) override {
        write([&] {
            for (const std::string& table : old_tables)
                db_.exec(("DROP TABLE IF EXISTS " + dialect_.quote(table)).c_str());
            for (const TableSpec& table : plan.tables())
                db_.exec(("ALTER TABLE " + dialect_.quote(table.physical_name(true)) +
                          " RENAME TO " + dialect_.quote(table.name))
                             .c_str());
            Resetting update(db_.statement(
                "UPDATE factstr_projections SET fingerprint = ?1, declaration = ?2,"
                " checkpoint = ?3, error = NULL, error_position = NULL, owner = NULL,"
                " lease_until = NULL, rebuild_fingerprint = NULL, rebuild_declaration = NULL,"
                " rebuild_checkpoint = NULL, updated_at = ?4 WHERE name = ?5"));
            update->bind(1, plan.fingerprint())
                .bind(2, plan.declaration_json())
                .bind(3, static_cast<std::int64_t>(checkpoint))
                .bind(4, now_ms())
                .bind(5, plan.name());
            update->run();
        });
        statements_.clear();  // the tables they named were dropped or renamed
    }

  private:
    static constexpr const char* kSelectMeta =
        "SELECT name, fingerprint, declaration, checkpoint, error, error_position,"
        " CASE WHEN lease_until >= ?1 THEN owner END, rebuild_fingerprint, rebuild_checkpoint"
        " FROM factstr_projections ORDER BY name";

    enum class Kind { upsert, remove, select };

    static MetaRow to_meta(const Statement& s) {
        MetaRow row;
        row.name = s.text(0);
        row.fingerprint = s.text(1);
        row.declaration = s.text(2);
        row.checkpoint = static_cast<SequenceNumber>(s.integer(3));
        if (!s.is_null(4)) row.error = std::string(s.text(4));
        if (!s.is_null(5)) row.error_position = static_cast<SequenceNumber>(s.integer(5));
        if (!s.is_null(6)) row.owner = std::string(s.text(6));
        if (!s.is_null(7)) row.rebuild_fingerprint = std::string(s.text(7));
        if (!s.is_null(8)) row.rebuild_checkpoint = static_cast<SequenceNumber>(s.integer(8));
        return row;
    }

    std::optional<MetaRow> meta_row(const std::string& name) {
        for (MetaRow& row : meta())
            if (row.name == name) return std::move(row);
        return std::nullopt;
    }

    bool table_exists(const std::string& name) {
        Resetting select(db_.statement("SELECT 1 FROM sqlite_schema WHERE name = ?1"));
        select->bind(1, std::string_view(name));
        return select->step();
    }

    // Statement texts live as long as the connection's statement cache refers to them.
    const char* stable(const std::string& sql) { return sql_texts_.emplace(sql).first->c_str(); }

    Statement& statement(const TableSpec& table, bool rebuild, Kind kind) {
        const std::string name = table.physical_name(rebuild);
        auto key = std::make_pair(name, kind);
        auto it = statements_.find(key);
        if (it != statements_.end()) return *it->second;
        std::string sql;
        std::string keys, where;
        for (std::size_t k = 0; k < table.key.size(); ++k) {
            keys += (k ? ", " : "") + dialect_.quote(table.key[k].column);
            where += (k ? " AND " : "") + dialect_.quote(table.key[k].column) + " = ?" +
                     std::to_string(k + 1);
        }
        if (kind == Kind::upsert) {
            std::string columns = keys, values;
            const std::size_t total = table.key.size() + table.columns.size();
            for (const PhysicalColumn& column : table.columns)
                columns += ", " + dialect_.quote(column.name);
            for (std::size_t i = 0; i < total; ++i)
                values += (i ? ", ?" : "?") + std::to_string(i + 1);
            sql = "INSERT INTO " + dialect_.quote(name) + " AS cur (" + columns + ") VALUES (" +
                  values + ") ON CONFLICT (" + keys + ") DO UPDATE SET " +
                  dialect_.update_assignments(table);
        } else if (kind == Kind::remove) {
            sql = "DELETE FROM " + dialect_.quote(name) + " WHERE " + where;
        } else {
            std::string columns;
            for (std::size_t c = 0; c < table.columns.size(); ++c)
                columns += (c ? ", " : "") + dialect_.quote(table.columns[c].name);
            sql = "SELECT " + columns + " FROM " + dialect_.quote(name) + " WHERE " + where;
        }
        Statement* prepared = &db_.statement(stable(sql));
        statements_.emplace(key, prepared);
        return *prepared;
    }

    void write_rows(const TableSpec& table, const std::vector<RowUpdate>& rows, bool rebuild) {
        for (const RowUpdate& row : rows) {
            Statement& statement =
                this->statement(table, rebuild, row.remove ? Kind::remove : Kind::upsert);
            Resetting reset(statement);
            int index = 1;
            for (const Cell& cell : row.key)
                bind_cell(statement, index++, cell);
            if (!row.remove)
                for (const Cell& cell : row.values)
                    bind_cell(statement, index++, cell);
            statement.run();
        }
    }

    // One write transaction (BEGIN IMMEDIATE: the writer lock is taken up front, so the
    // fence read and the writes see the same state). `commit` decides whether it commits.
    template <class Fn>
    void write(Fn&& fn) {
        write(std::forward<Fn>(fn), [] { return true; });
    }
    template <class Fn, class Commit>
    void write(Fn&& fn, Commit&& commit) {
        db_.exec("BEGIN IMMEDIATE");
        try {
            fn();
            db_.exec(commit() ? "COMMIT" : "ROLLBACK");
        } catch (...) {
            sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
            throw;
        }
    }

    Connection db_;
    Dialect dialect_{false};
    std::set<std::string> sql_texts_;
    std::map<std::pair<std::string, Kind>, Statement*> statements_;
};

}  // namespace

std::unique_ptr<DerivedTables> open_sqlite_tables(const DatabaseLocation& location) {
    return std::make_unique<SqliteTables>(location);
}

}  // namespace factstr::projections::detail
