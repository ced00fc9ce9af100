// The memory engine's database: where the layers above keep the derived tables of a memory
// store (the projections' tables and their bookkeeping), as the SQLite file and the PostgreSQL
// database hold them for the other engines. A memory engine owns one for its lifetime and
// hands it out through DatabaseLocation::memory, so every projection engine on that store sees
// the same tables.
//
// A table is a set of rows, each a vector of SQL-like values, keyed by bytes the caller chooses
// (its primary key). Writes go through a Transaction, which runs alone and is applied whole:
// readers see all of its writes or none, and a transaction that throws leaves nothing behind.
// Reads run beside each other. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <variant>
#include <vector>

namespace factstr::database {

// A value of a row: NULL, INTEGER, REAL, TEXT or BOOLEAN (the alternatives of
// projections::Cell, in the same order, so that its rows are stored as they are).
using MemoryValue = std::variant<std::monostate, std::int64_t, double, std::string, bool>;
using MemoryRow = std::vector<MemoryValue>;

// One table: rows by key. Read through a const reference; changed only through a Transaction.
class MemoryTable {
  public:
    // Looks keys up as string_views. Deliberately not noexcept: libstdc++ then keeps each
    // key's hash in its node instead of hashing keys again while it walks a bucket.
    struct KeyHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view key) const {
            return std::hash<std::string_view>{}(key);
        }
    };
    using Rows = std::unordered_map<std::string, MemoryRow, KeyHash, std::equal_to<>>;

    // The row stored under `key`, or null. Valid until the next write to the table.
    const MemoryRow* find(std::string_view key) const {
        auto it = rows_.find(key);
        return it == rows_.end() ? nullptr : &it->second;
    }
    std::size_t size() const { return rows_.size(); }
    bool empty() const { return rows_.empty(); }
    // Every (key, row), in no particular order.
    const Rows& rows() const { return rows_; }

  private:
    friend class MemoryDatabase;
    Rows rows_;
};

class MemoryDatabase {
  public:
    class Reader;
    class Transaction;

    MemoryDatabase();
    ~MemoryDatabase();
    MemoryDatabase(const MemoryDatabase&) = delete;
    MemoryDatabase& operator=(const MemoryDatabase&) = delete;

    // Runs `fn(Transaction&)` with no other transaction or reader running, and returns what
    // it returns. Its writes become visible when it returns; when `fn` throws, every write it
    // made is undone and the exception propagates. Cost: the writes, plus a copy of the values
    // of each row it changes in place (kept to undo them).
    template <class Fn>
    std::invoke_result_t<Fn&, Transaction&> write(Fn&& fn);

    // Runs `fn(const Reader&)` beside other readers (never beside a transaction), and returns
    // what it returns.
    template <class Fn>
    std::invoke_result_t<Fn&, const Reader&> read(Fn&& fn) const;

    // Read access to the tables, inside read() or write(); what it returns is valid until that
    // call returns.
    class Reader {
      public:
        // The table named `name`, or null.
        const MemoryTable* table(std::string_view name) const;

      protected:
        friend class MemoryDatabase;
        explicit Reader(const MemoryDatabase& db) : db_(db) {}
        const MemoryDatabase& db_;
    };

    // The writes of one write() call. Tables and rows it returns are valid during that call,
    // until the transaction drops or clears them (a row: until it is changed again).
    class Transaction : public Reader {
      public:
        ~Transaction();  // undoes every write unless committed
        Transaction(const Transaction&) = delete;
        Transaction& operator=(const Transaction&) = delete;

        // The table named `name`, created empty when there is none.
        MemoryTable& create_table(std::string_view name);
        // Drops the table named `name`; false when there is none.
        bool drop_table(std::string_view name);
        // Gives the table named `from` (which must exist) the name `to`, dropping a table that
        // had that name. Its rows stay; references to it stay valid.
        void rename_table(std::string_view from, std::string_view to);
        // Removes every row of `table`.
        void clear(MemoryTable& table);

        // The row under `key` to change in place, or null when there is none.
        MemoryRow* modify(MemoryTable& table, std::string_view key);
        // Stores `row` under `key`, replacing a row stored there.
        void put(MemoryTable& table, std::string key, MemoryRow row);
        // Removes the row under `key`; false when there is none.
        bool erase(MemoryTable& table, std::string_view key);

      private:
        friend class MemoryDatabase;
        struct Undo;
        explicit Transaction(MemoryDatabase& db);
        void commit() noexcept;
        void roll_back() noexcept;

        MemoryDatabase& writable_;
        std::vector<Undo>& undo_;          // the database's undo log, empty at the start
        std::vector<MemoryValue>& saved_;  // and the values it refers to
    };

  private:
    using Tables = std::map<std::string, std::unique_ptr<MemoryTable>, std::less<>>;

    mutable std::shared_mutex mutex_;
    Tables tables_;
    // The running transaction's undo log, in the order its writes were made, and the values of
    // the rows it changed in place. Kept here (transactions run one at a time) so that their
    // capacity is reused: a write that changes many rows allocates nothing per row (the room
    // the largest write needed stays allocated).
    std::vector<Transaction::Undo> undo_;
    std::vector<MemoryValue> saved_values_;
};

// Makes an empty database (declared for the engines in factstr/internal/backend.hpp).
std::shared_ptr<MemoryDatabase> make_memory_database();

template <class Fn>
std::invoke_result_t<Fn&, MemoryDatabase::Transaction&> MemoryDatabase::write(Fn&& fn) {
    std::unique_lock lock(mutex_);
    Transaction transaction(*this);
    if constexpr (std::is_void_v<std::invoke_result_t<Fn&, Transaction&>>) {
        fn(transaction);
        transaction.commit();
    } else {
        auto result = fn(transaction);
        transaction.commit();
        return result;
    }
}

template <class Fn>
std::invoke_result_t<Fn&, const MemoryDatabase::Reader&> MemoryDatabase::read(Fn&& fn) const {
    std::shared_lock lock(mutex_);
    const Reader reader(*this);
    return fn(reader);
}

}  // namespace factstr::database
