#include "factstr/database/memory_database.hpp"

#include <stdexcept>

namespace factstr::database {

// How to take back one write. Every step records what it needs before it changes anything,
// so that a write that throws (out of memory) leaves the log matching the tables.
struct MemoryDatabase::Transaction::Undo {
    struct RowAdded {
        MemoryTable* table;
        // The stored key. Its node may leave the table later in the transaction (erase,
        // clear, drop), but it is put back before this step is undone.
        const std::string* key = nullptr;
    };
    struct RowChanged {  // in place: its values before are saved_values_[first, first + count)
        MemoryRow* row;
        std::size_t first;
        std::size_t count;
    };
    struct RowReplaced {
        MemoryRow* row;
        MemoryRow previous;
    };
    struct RowErased {
        MemoryTable* table;
        MemoryTable::Rows::node_type node;  // the row itself, reinserted at the same address
    };
    struct TableCreated {
        std::string name;
    };
    struct TableDropped {
        Tables::node_type node;
    };
    struct TableRenamed {
        std::string from;
        std::string to;
    };
    struct TableCleared {
        MemoryTable* table;
        MemoryTable::Rows rows;
    };
    std::variant<RowAdded, RowChanged, RowReplaced, RowErased, TableCreated, TableDropped,
                 TableRenamed, TableCleared>
        step;
};

MemoryDatabase::MemoryDatabase() = default;
MemoryDatabase::~MemoryDatabase() = default;

std::shared_ptr<MemoryDatabase> make_memory_database() {
    return std::make_shared<MemoryDatabase>();
}

const MemoryTable* MemoryDatabase::Reader::table(std::string_view name) const {
    auto it = db_.tables_.find(name);
    return it == db_.tables_.end() ? nullptr : it->second.get();
}

MemoryDatabase::Transaction::Transaction(MemoryDatabase& db)
    : Reader(db), writable_(db), undo_(db.undo_), saved_(db.saved_values_) {}

MemoryDatabase::Transaction::~Transaction() {
    roll_back();
}

void MemoryDatabase::Transaction::commit() noexcept {
    undo_.clear();
    saved_.clear();
}

void MemoryDatabase::Transaction::roll_back() noexcept {
    Tables& tables = writable_.tables_;
    for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
        std::visit(
            [&](auto& step) {
                using Step = std::decay_t<decltype(step)>;
                if constexpr (std::is_same_v<Step, Undo::RowAdded>) {
                    if (step.key) step.table->rows_.erase(*step.key);
                } else if constexpr (std::is_same_v<Step, Undo::RowChanged>) {
                    auto first = saved_.begin() + static_cast<std::ptrdiff_t>(step.first);
                    step.row->assign(
                        std::make_move_iterator(first),
                        std::make_move_iterator(first + static_cast<std::ptrdiff_t>(step.count)));
                } else if constexpr (std::is_same_v<Step, Undo::RowReplaced>) {
                    *step.row = std::move(step.previous);
                } else if constexpr (std::is_same_v<Step, Undo::RowErased>) {
                    if (step.node) step.table->rows_.insert(std::move(step.node));
                } else if constexpr (std::is_same_v<Step, Undo::TableCreated>) {
                    tables.erase(step.name);
                } else if constexpr (std::is_same_v<Step, Undo::TableDropped>) {
                    if (step.node) tables.insert(std::move(step.node));
                } else if constexpr (std::is_same_v<Step, Undo::TableRenamed>) {
                    auto node = tables.extract(step.to);
                    node.key() = std::move(step.from);
                    tables.insert(std::move(node));
                } else if constexpr (std::is_same_v<Step, Undo::TableCleared>) {
                    step.table->rows_ = std::move(step.rows);
                }
            },
            it->step);
    }
    commit();
}

MemoryTable& MemoryDatabase::Transaction::create_table(std::string_view name) {
    Tables& tables = writable_.tables_;
    if (auto it = tables.find(name); it != tables.end()) return *it->second;
    undo_.push_back({Undo::TableCreated{std::string(name)}});
    try {
        return *tables.emplace(std::string(name), std::make_unique<MemoryTable>()).first->second;
    } catch (...) {
        undo_.pop_back();
        throw;
    }
}

bool MemoryDatabase::Transaction::drop_table(std::string_view name) {
    Tables& tables = writable_.tables_;
    auto it = tables.find(name);
    if (it == tables.end()) return false;
    undo_.push_back({Undo::TableDropped{}});
    std::get<Undo::TableDropped>(undo_.back().step).node = tables.extract(it);
    return true;
}

void MemoryDatabase::Transaction::rename_table(std::string_view from, std::string_view to) {
    Tables& tables = writable_.tables_;
    auto it = tables.find(from);
    if (it == tables.end())
        throw std::invalid_argument("memory database: no table named '" + std::string(from) +
                                    "' to rename");
    if (from == to) return;
    drop_table(to);
    undo_.push_back({Undo::TableRenamed{std::string(from), std::string(to)}});
    std::string name;
    try {
        name = to;
    } catch (...) {
        undo_.pop_back();
        throw;
    }
    auto node = tables.extract(it);
    node.key() = std::move(name);
    tables.insert(std::move(node));  // a node handle: no allocation
}

void MemoryDatabase::Transaction::clear(MemoryTable& table) {
    undo_.push_back({Undo::TableCleared{&table, std::move(table.rows_)}});
    table.rows_.clear();  // a moved-from map is valid but unspecified
}

MemoryRow* MemoryDatabase::Transaction::modify(MemoryTable& table, std::string_view key) {
    auto it = table.rows_.find(key);
    if (it == table.rows_.end()) return nullptr;
    MemoryRow& row = it->second;
    const std::size_t first = saved_.size();
    undo_.push_back({Undo::RowChanged{&row, first, row.size()}});
    try {
        saved_.insert(saved_.end(), row.begin(), row.end());
    } catch (...) {
        saved_.erase(saved_.begin() + static_cast<std::ptrdiff_t>(first), saved_.end());
        undo_.pop_back();
        throw;
    }
    return &row;
}

void MemoryDatabase::Transaction::put(MemoryTable& table, std::string key, MemoryRow row) {
    if (auto it = table.rows_.find(key); it != table.rows_.end()) {
        undo_.push_back({Undo::RowReplaced{&it->second, std::move(it->second)}});
        it->second = std::move(row);
        return;
    }
    undo_.push_back({Undo::RowAdded{&table}});
    try {
        auto it = table.rows_.try_emplace(std::move(key), std::move(row)).first;
        std::get<Undo::RowAdded>(undo_.back().step).key = &it->first;
    } catch (...) {
        undo_.pop_back();
        throw;
    }
}

bool MemoryDatabase::Transaction::erase(MemoryTable& table, std::string_view key) {
    auto it = table.rows_.find(key);
    if (it == table.rows_.end()) return false;
    undo_.push_back({Undo::RowErased{&table, {}}});
    std::get<Undo::RowErased>(undo_.back().step).node = table.rows_.extract(it);
    return true;
}

}  // namespace factstr::database
