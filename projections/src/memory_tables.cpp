// Derived tables of a memory store: kept with the store (attached to its backend), so every
// engine on that store sees the same tables, and they live as long as the store.
#include <algorithm>
#include <map>
#include <mutex>
#include <unordered_map>

#include "tables.hpp"

namespace factstr::projections::detail {
namespace {

struct MemoryRow {
    std::vector<Cell> key;
    std::vector<Cell> values;
};
struct MemoryTable {
    TableSpec spec;
    std::unordered_map<std::string, MemoryRow> rows;  // by key_text
};

struct MemoryMeta {
    MetaRow row;
    std::chrono::steady_clock::time_point lease_until{};
};

struct MemoryDatabase {
    std::mutex mutex;
    std::map<std::string, MemoryMeta> meta;
    std::map<std::string, MemoryTable> tables;
    std::map<std::string, std::chrono::steady_clock::time_point> workers;
};

void update_row(const TableSpec& spec, std::vector<Cell>& current, const std::vector<Cell>& delta) {
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

class MemoryTables final : public DerivedTables {
  public:
    explicit MemoryTables(std::shared_ptr<MemoryDatabase> db) : db_(std::move(db)) {}

    MetaRow register_projection(const Plan& plan) override {
        std::lock_guard lock(db_->mutex);
        auto it = db_->meta.find(plan.name());
        if (it != db_->meta.end()) {
            if (it->second.row.fingerprint != plan.fingerprint())
                refuse_changed_declaration(plan, it->second.row.fingerprint);
            return snapshot(it->second);
        }
        for (const TableSpec& table : plan.tables())
            if (db_->tables.count(table.name)) refuse_taken_table(plan, table.name, "");
        MemoryMeta meta;
        meta.row.name = plan.name();
        meta.row.fingerprint = plan.fingerprint();
        meta.row.declaration = plan.declaration_json();
        for (const TableSpec& table : plan.tables())
            db_->tables[table.name].spec = table;
        auto& stored = db_->meta[plan.name()] = std::move(meta);
        return snapshot(stored);
    }

    std::vector<MetaRow> meta() override {
        std::lock_guard lock(db_->mutex);
        std::vector<MetaRow> rows;
        for (auto& [name, meta] : db_->meta)
            rows.push_back(snapshot(meta));
        return rows;
    }

    std::size_t heartbeat(const std::string& worker, std::chrono::milliseconds lease) override {
        std::lock_guard lock(db_->mutex);
        const auto now = std::chrono::steady_clock::now();
        db_->workers[worker] = now + lease;
        std::erase_if(db_->workers, [&](const auto& entry) { return entry.second < now; });
        return db_->workers.size();
    }

    void leave(const std::string& worker) override {
        std::lock_guard lock(db_->mutex);
        db_->workers.erase(worker);
    }

    std::vector<std::string> claim(const std::vector<std::string>& names, const std::string& worker,
                                   std::chrono::milliseconds lease, std::size_t limit) override {
        std::lock_guard lock(db_->mutex);
        std::vector<std::string> held;
        const auto now = std::chrono::steady_clock::now();
        for (const std::string& name : names) {
            if (held.size() >= limit) break;
            auto it = db_->meta.find(name);
            if (it == db_->meta.end()) continue;
            MemoryMeta& meta = it->second;
            if (!meta.row.owner || *meta.row.owner == worker || meta.lease_until < now) {
                meta.row.owner = worker;
                meta.lease_until = now + lease;
                held.push_back(name);
            }
        }
        return held;
    }

    std::vector<std::string> renew(const std::vector<std::string>& names, const std::string& worker,
                                   std::chrono::milliseconds lease) override {
        std::lock_guard lock(db_->mutex);
        std::vector<std::string> held;
        for (const std::string& name : names) {
            auto it = db_->meta.find(name);
            if (it == db_->meta.end() || it->second.row.owner != worker) continue;
            it->second.lease_until = std::chrono::steady_clock::now() + lease;
            held.push_back(name);
        }
        return held;
    }

    void release(const std::vector<std::string>& names, const std::string& worker) override {
        std::lock_guard lock(db_->mutex);
        for (const std::string& name : names) {
            auto it = db_->meta.find(name);
            if (it != db_->meta.end() && it->second.row.owner == worker)
                it->second.row.owner.reset();
        }
    }

    bool apply(const Plan& plan, const PageDelta& delta, const Fence& fence) override {
        std::lock_guard lock(db_->mutex);
        auto it = db_->meta.find(plan.name());
        if (it == db_->meta.end()) return false;
        MetaRow& row = it->second.row;
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
        for (std::size_t t = 0; t < delta.tables.size(); ++t) {
            const TableSpec& spec = plan.tables()[t];
            MemoryTable& table = db_->tables[spec.physical_name(fence.rebuild)];
            for (const RowUpdate& update : delta.tables[t]) {
                std::string key = key_text(update.key);
                if (update.remove) {
                    table.rows.erase(key);
                    continue;
                }
                auto found = table.rows.find(key);
                if (found == table.rows.end())
                    table.rows.emplace(std::move(key), MemoryRow{update.key, update.values});
                else
                    update_row(spec, found->second.values, update.values);
            }
        }
        return true;
    }

    void record_failure(const std::string& name, const std::string& message,
                        SequenceNumber position) override {
        std::lock_guard lock(db_->mutex);
        auto it = db_->meta.find(name);
        if (it == db_->meta.end()) return;
        it->second.row.error = message;
        it->second.row.error_position = position;
    }

    std::optional<std::vector<Cell>> load_row(const TableSpec& table, const std::vector<Cell>& key,
                                              bool rebuild) override {
        std::lock_guard lock(db_->mutex);
        auto t = db_->tables.find(table.physical_name(rebuild));
        if (t == db_->tables.end()) return std::nullopt;
        auto row = t->second.rows.find(key_text(key));
        if (row == t->second.rows.end()) return std::nullopt;
        return row->second.values;
    }

    bool is_empty(const TableSpec& table, bool rebuild) override {
        std::lock_guard lock(db_->mutex);
        auto t = db_->tables.find(table.physical_name(rebuild));
        return t == db_->tables.end() || t->second.rows.empty();
    }

    Table read(const TableSpec& spec) override {
        std::lock_guard lock(db_->mutex);
        std::vector<ColumnType> types;
        Table table = empty_table(spec, types);
        auto t = db_->tables.find(spec.name);
        if (t == db_->tables.end()) return table;
        for (const auto& [text, stored] : t->second.rows) {
            std::vector<Cell> row = stored.key;
            row.insert(row.end(), stored.values.begin(), stored.values.end());
            table.rows.push_back(std::move(row));
        }
        const std::size_t key_columns = spec.key.size();
        std::sort(table.rows.begin(), table.rows.end(), [&](const auto& a, const auto& b) {
            return std::lexicographical_compare(a.begin(), a.begin() + key_columns, b.begin(),
                                                b.begin() + key_columns);
        });
        return table;
    }

    void begin_rebuild(const Plan& plan) override {
        std::lock_guard lock(db_->mutex);
        for (const TableSpec& table : plan.tables()) {
            MemoryTable& fresh = db_->tables[table.physical_name(true)];
            fresh.spec = table;
            fresh.rows.clear();
        }
        MetaRow& row = db_->meta.at(plan.name()).row;
        row.rebuild_fingerprint = plan.fingerprint();
        row.rebuild_checkpoint = 0;
    }

    void finish_rebuild(const Plan& plan, SequenceNumber checkpoint,
                        const std::vector<std::string>& old_tables) override {
        std::lock_guard lock(db_->mutex);
        for (const std::string& table : old_tables)
            db_->tables.erase(table);
        for (const TableSpec& table : plan.tables()) {
            auto node = db_->tables.extract(table.physical_name(true));
            node.key() = table.name;
            db_->tables.insert(std::move(node));
        }
        MetaRow& row = db_->meta.at(plan.name()).row;
        row.fingerprint = plan.fingerprint();
        row.declaration = plan.declaration_json();
        row.checkpoint = checkpoint;
        row.error.reset();
        row.error_position.reset();
        row.owner.reset();
        row.rebuild_fingerprint.reset();
        row.rebuild_checkpoint.reset();
    }

  private:
    static MetaRow snapshot(const MemoryMeta& meta) {
        MetaRow row = meta.row;
        if (row.owner && meta.lease_until < std::chrono::steady_clock::now()) row.owner.reset();
        return row;
    }

    std::shared_ptr<MemoryDatabase> db_;
};

}  // namespace

std::unique_ptr<DerivedTables> open_memory_tables(Store& store) {
    auto db = std::static_pointer_cast<MemoryDatabase>(store.backend().attachment(
        "factstr.projections", [] { return std::make_shared<MemoryDatabase>(); }));
    return std::make_unique<MemoryTables>(std::move(db));
}

}  // namespace factstr::projections::detail
