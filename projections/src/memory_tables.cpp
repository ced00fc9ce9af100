// Derived tables of a memory store, kept in the memory engine's database
// (factstr/database/memory_database.hpp): every engine on that store sees the same tables, and
// they live as long as the store. Each write below is one transaction of that database, so a
// page's rows and the projection's checkpoint change together, or not at all.
//
// Layout, as in the SQL writers: a derived table's row is its key cells, then its columns,
// keyed by key_text(key); the projections' bookkeeping is in two tables whose names no derived
// table can have (derived table names are [a-z_][a-z0-9_]* identifiers).
#include <algorithm>
#include <chrono>
#include <span>
#include <type_traits>

#include "factstr/database/memory_database.hpp"
#include "tables.hpp"

namespace factstr::projections::detail {
namespace {

using database::MemoryDatabase;
using database::MemoryRow;
using database::MemoryTable;
using Transaction = MemoryDatabase::Transaction;
using Clock = std::chrono::steady_clock;

static_assert(std::is_same_v<database::MemoryValue, Cell>,
              "derived rows are stored in the memory database as they are");

// A projection's meta row, by its name: the columns of factstr_projections in the SQL writers.
constexpr std::string_view kProjectionsTable = "factstr.projections";
enum MetaColumn : std::size_t {
    fingerprint_column,
    declaration_column,
    checkpoint_column,
    error_column,
    error_position_column,
    owner_column,
    lease_until_column,  // steady clock, nanoseconds
    rebuild_fingerprint_column,
    rebuild_checkpoint_column,
    meta_columns,
};
// Live workers, by worker id: one column, the end of the worker's lease (steady clock, ns).
constexpr std::string_view kWorkersTable = "factstr.projection_workers";

struct StoredMeta {
    MetaRow row;  // `owner` as stored, even when its lease ran out
    Clock::time_point lease_until{};
};

std::int64_t ticks(Clock::time_point time) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count();
}
Clock::time_point time_of(const Cell& cell) {
    return Clock::time_point(std::chrono::duration_cast<Clock::duration>(
        std::chrono::nanoseconds(std::get<std::int64_t>(cell))));
}

Cell text_cell(const std::optional<std::string>& text) {
    return text ? Cell(*text) : Cell();
}
Cell position_cell(std::optional<SequenceNumber> position) {
    return position ? Cell(static_cast<std::int64_t>(*position)) : Cell();
}
std::optional<std::string> text_of(const Cell& cell) {
    if (const auto* text = std::get_if<std::string>(&cell)) return *text;
    return std::nullopt;
}
std::optional<SequenceNumber> position_of(const Cell& cell) {
    if (const auto* number = std::get_if<std::int64_t>(&cell))
        return static_cast<SequenceNumber>(*number);
    return std::nullopt;
}

StoredMeta load_meta(const std::string& name, const MemoryRow& stored) {
    StoredMeta meta;
    meta.row.name = name;
    meta.row.fingerprint = std::get<std::string>(stored[fingerprint_column]);
    meta.row.declaration = std::get<std::string>(stored[declaration_column]);
    meta.row.checkpoint = *position_of(stored[checkpoint_column]);
    meta.row.error = text_of(stored[error_column]);
    meta.row.error_position = position_of(stored[error_position_column]);
    meta.row.owner = text_of(stored[owner_column]);
    meta.lease_until = time_of(stored[lease_until_column]);
    meta.row.rebuild_fingerprint = text_of(stored[rebuild_fingerprint_column]);
    meta.row.rebuild_checkpoint = position_of(stored[rebuild_checkpoint_column]);
    return meta;
}

MemoryRow stored_row(const StoredMeta& meta) {
    MemoryRow stored(meta_columns);
    stored[fingerprint_column] = meta.row.fingerprint;
    stored[declaration_column] = meta.row.declaration;
    stored[checkpoint_column] = static_cast<std::int64_t>(meta.row.checkpoint);
    stored[error_column] = text_cell(meta.row.error);
    stored[error_position_column] = position_cell(meta.row.error_position);
    stored[owner_column] = text_cell(meta.row.owner);
    stored[lease_until_column] = ticks(meta.lease_until);
    stored[rebuild_fingerprint_column] = text_cell(meta.row.rebuild_fingerprint);
    stored[rebuild_checkpoint_column] = position_cell(meta.row.rebuild_checkpoint);
    return stored;
}

// The meta row as readers see it: the owner only while its lease is live.
MetaRow snapshot(const StoredMeta& meta) {
    MetaRow row = meta.row;
    if (row.owner && meta.lease_until < Clock::now()) row.owner.reset();
    return row;
}

std::optional<StoredMeta> find_meta(const MemoryDatabase::Reader& tables, const std::string& name) {
    const MemoryTable* projections = tables.table(kProjectionsTable);
    const MemoryRow* stored = projections ? projections->find(name) : nullptr;
    if (!stored) return std::nullopt;
    return load_meta(name, *stored);
}

StoredMeta require_meta(const MemoryDatabase::Reader& tables, const Plan& plan) {
    auto meta = find_meta(tables, plan.name());
    if (!meta)
        throw StoreError(ErrorCode::storage_failure,
                         "projection '" + plan.name() + "' is not registered in the memory store");
    return std::move(*meta);
}

void save_meta(Transaction& tx, const StoredMeta& meta) {
    tx.put(tx.create_table(kProjectionsTable), meta.row.name, stored_row(meta));
}

// Applies an aggregate row's update (deltas and new values) to the stored row.
void update_row(const TableSpec& spec, MemoryRow& stored, const std::vector<Cell>& delta) {
    const std::span<Cell> current = std::span<Cell>(stored).subspan(spec.key.size());
    for (std::size_t c = 0; c < spec.columns.size(); ++c) {
        const PhysicalColumn& column = spec.columns[c];
        if (column.op == Op::add) {
            if (auto* i = std::get_if<std::int64_t>(&current[c]))
                *i += std::get<std::int64_t>(delta[c]);
            else
                std::get<double>(current[c]) += std::get<double>(delta[c]);
        } else if (column.op == Op::set) {
            current[c] = delta[c];
        }
    }
    derive_columns(spec, current);
}

MemoryRow new_row(const RowUpdate& update) {
    MemoryRow row;
    row.reserve(update.key.size() + update.values.size());
    row.insert(row.end(), update.key.begin(), update.key.end());
    row.insert(row.end(), update.values.begin(), update.values.end());
    return row;
}

class MemoryTables final : public DerivedTables {
  public:
    explicit MemoryTables(std::shared_ptr<MemoryDatabase> db) : db_(std::move(db)) {}

    MetaRow register_projection(const Plan& plan) override {
        return db_->write([&](Transaction& tx) {
            if (auto existing = find_meta(tx, plan.name())) {
                if (existing->row.fingerprint != plan.fingerprint())
                    refuse_changed_declaration(plan, existing->row.fingerprint);
                return snapshot(*existing);
            }
            for (const TableSpec& table : plan.tables())
                if (tx.table(table.name)) refuse_taken_table(plan, table.name, "");
            StoredMeta meta;
            meta.row.name = plan.name();
            meta.row.fingerprint = plan.fingerprint();
            meta.row.declaration = plan.declaration_json();
            for (const TableSpec& table : plan.tables())
                tx.create_table(table.name);
            save_meta(tx, meta);
            return snapshot(meta);
        });
    }

    std::vector<MetaRow> meta() override {
        std::vector<MetaRow> rows = db_->read([](const MemoryDatabase::Reader& tables) {
            std::vector<MetaRow> rows;
            if (const MemoryTable* projections = tables.table(kProjectionsTable))
                for (const auto& [name, stored] : projections->rows())
                    rows.push_back(snapshot(load_meta(name, stored)));
            return rows;
        });
        std::sort(rows.begin(), rows.end(),
                  [](const MetaRow& a, const MetaRow& b) { return a.name < b.name; });
        return rows;
    }

    std::size_t heartbeat(const std::string& worker, std::chrono::milliseconds lease) override {
        return db_->write([&](Transaction& tx) {
            const auto now = Clock::now();
            MemoryTable& workers = tx.create_table(kWorkersTable);
            tx.put(workers, worker, MemoryRow{Cell(ticks(now + lease))});
            std::vector<std::string> expired;
            for (const auto& [id, row] : workers.rows())
                if (time_of(row.front()) < now) expired.push_back(id);
            for (const std::string& id : expired)
                tx.erase(workers, id);
            return workers.size();
        });
    }

    void leave(const std::string& worker) override {
        db_->write([&](Transaction& tx) { tx.erase(tx.create_table(kWorkersTable), worker); });
    }

    std::vector<std::string> claim(const std::vector<std::string>& names, const std::string& worker,
                                   std::chrono::milliseconds lease, std::size_t limit) override {
        return db_->write([&](Transaction& tx) {
            std::vector<std::string> held;
            const auto now = Clock::now();
            for (const std::string& name : names) {
                if (held.size() >= limit) break;
                auto meta = find_meta(tx, name);
                if (!meta) continue;
                if (!meta->row.owner || *meta->row.owner == worker || meta->lease_until < now) {
                    meta->row.owner = worker;
                    meta->lease_until = now + lease;
                    save_meta(tx, *meta);
                    held.push_back(name);
                }
            }
            return held;
        });
    }

    std::vector<std::string> renew(const std::vector<std::string>& names, const std::string& worker,
                                   std::chrono::milliseconds lease) override {
        return db_->write([&](Transaction& tx) {
            std::vector<std::string> held;
            for (const std::string& name : names) {
                auto meta = find_meta(tx, name);
                if (!meta || meta->row.owner != worker) continue;
                meta->lease_until = Clock::now() + lease;
                save_meta(tx, *meta);
                held.push_back(name);
            }
            return held;
        });
    }

    void release(const std::vector<std::string>& names, const std::string& worker) override {
        db_->write([&](Transaction& tx) {
            for (const std::string& name : names) {
                auto meta = find_meta(tx, name);
                if (!meta || meta->row.owner != worker) continue;
                meta->row.owner.reset();
                save_meta(tx, *meta);
            }
        });
    }

    bool apply(const Plan& plan, const PageDelta& delta, const Fence& fence) override {
        return db_->write([&](Transaction& tx) {
            auto meta = find_meta(tx, plan.name());
            if (!meta) return false;
            MetaRow& row = meta->row;
            if (fence.rebuild) {
                if (row.rebuild_checkpoint != fence.from ||
                    row.rebuild_fingerprint != fence.fingerprint)
                    return false;
                row.rebuild_checkpoint = fence.to;
            } else {
                if (row.checkpoint != fence.from || row.fingerprint != fence.fingerprint ||
                    row.owner != fence.worker)
                    return false;
                row.checkpoint = fence.to;
                row.error.reset();
                row.error_position.reset();
            }
            save_meta(tx, *meta);
            for (std::size_t t = 0; t < delta.tables.size(); ++t) {
                const TableSpec& spec = plan.tables()[t];
                MemoryTable& table = tx.create_table(spec.physical_name(fence.rebuild));
                for (const RowUpdate& update : delta.tables[t]) {
                    std::string key = key_text(update.key);
                    if (update.remove)
                        tx.erase(table, key);
                    else if (MemoryRow* stored = tx.modify(table, key))
                        update_row(spec, *stored, update.values);
                    else
                        tx.put(table, std::move(key), new_row(update));
                }
            }
            return true;
        });
    }

    void record_failure(const std::string& name, const std::string& message,
                        SequenceNumber position) override {
        db_->write([&](Transaction& tx) {
            auto meta = find_meta(tx, name);
            if (!meta) return;
            meta->row.error = message;
            meta->row.error_position = position;
            save_meta(tx, *meta);
        });
    }

    std::optional<std::vector<Cell>> load_row(const TableSpec& table, const std::vector<Cell>& key,
                                              bool rebuild) override {
        return db_->read([&](const MemoryDatabase::Reader& tables) {
            const MemoryTable* stored = tables.table(table.physical_name(rebuild));
            const MemoryRow* row = stored ? stored->find(key_text(key)) : nullptr;
            if (!row) return std::optional<std::vector<Cell>>();
            return std::optional(std::vector<Cell>(row->begin() + table.key.size(), row->end()));
        });
    }

    bool is_empty(const TableSpec& table, bool rebuild) override {
        return db_->read([&](const MemoryDatabase::Reader& tables) {
            const MemoryTable* stored = tables.table(table.physical_name(rebuild));
            return !stored || stored->empty();
        });
    }

    Table read(const TableSpec& spec) override {
        std::vector<ColumnType> types;
        Table table = empty_table(spec, types);
        db_->read([&](const MemoryDatabase::Reader& tables) {
            if (const MemoryTable* stored = tables.table(spec.name))
                for (const auto& [key, row] : stored->rows())
                    table.rows.push_back(row);
        });
        const std::size_t key_columns = spec.key.size();
        std::sort(table.rows.begin(), table.rows.end(), [&](const auto& a, const auto& b) {
            return std::lexicographical_compare(a.begin(), a.begin() + key_columns, b.begin(),
                                                b.begin() + key_columns);
        });
        return table;
    }

    void begin_rebuild(const Plan& plan) override {
        db_->write([&](Transaction& tx) {
            StoredMeta meta = require_meta(tx, plan);
            for (const TableSpec& table : plan.tables())
                tx.clear(tx.create_table(table.physical_name(true)));
            meta.row.rebuild_fingerprint = plan.fingerprint();
            meta.row.rebuild_checkpoint = 0;
            save_meta(tx, meta);
        });
    }

    void finish_rebuild(const Plan& plan, SequenceNumber checkpoint,
                        const std::vector<std::string>& old_tables) override {
        db_->write([&](Transaction& tx) {
            StoredMeta meta = require_meta(tx, plan);
            for (const std::string& table : old_tables)
                tx.drop_table(table);
            for (const TableSpec& table : plan.tables())
                tx.rename_table(table.physical_name(true), table.name);
            MetaRow& row = meta.row;
            row.fingerprint = plan.fingerprint();
            row.declaration = plan.declaration_json();
            row.checkpoint = checkpoint;
            row.error.reset();
            row.error_position.reset();
            row.owner.reset();
            row.rebuild_fingerprint.reset();
            row.rebuild_checkpoint.reset();
            save_meta(tx, meta);
        });
    }

  private:
    std::shared_ptr<MemoryDatabase> db_;
};

}  // namespace

std::unique_ptr<DerivedTables> open_memory_tables(const DatabaseLocation& location) {
    if (!location.memory)
        throw StoreError(ErrorCode::storage_failure,
                         "the memory store has no database for derived tables");
    return std::make_unique<MemoryTables>(location.memory);
}

}  // namespace factstr::projections::detail
