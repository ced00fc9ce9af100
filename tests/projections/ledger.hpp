// The projections the multi-process tests run, and their values recomputed from the log.
#pragma once

#include <factstr/factstr.hpp>
#include <map>
#include <string>

namespace factstr::testing {

inline projections::Projection ledger(int index) {
    using namespace factstr::projections;
    Projection projection("ledger_" + std::to_string(index));
    projection.key_by("accountId")
        .count("deposits", on({"deposited"}))
        .weighted_sum("balance",
                      {{on({"deposited"}), 1, "amount", 1}, {on({"withdrawn"}), -1, "amount", 1}},
                      ColumnType::integer);
    return projection;
}

struct LedgerRow {
    std::int64_t deposits = 0;
    std::int64_t balance = 0;
    friend bool operator==(const LedgerRow&, const LedgerRow&) = default;
};

// account -> values, straight from the log.
inline std::map<std::string, LedgerRow> ledger_from_log(Store& store) {
    std::map<std::string, LedgerRow> rows;
    for (const EventRecord& record : store.query(EventQuery{}).event_records) {
        const auto account_at = record.payload.find("\"accountId\":\"") + 13;
        const std::string account =
            record.payload.substr(account_at, record.payload.find('"', account_at) - account_at);
        const std::int64_t amount =
            std::stoll(record.payload.substr(record.payload.find("\"amount\":") + 9));
        LedgerRow& row = rows[account];
        if (record.event_type == "deposited") {
            ++row.deposits;
            row.balance += amount;
        } else {
            row.balance -= amount;
        }
    }
    return rows;
}

inline std::map<std::string, LedgerRow> ledger_from_table(const projections::Table& table) {
    std::map<std::string, LedgerRow> rows;
    for (const auto& values : table.rows)
        rows[std::get<std::string>(values[table.column("account_id")])] = {
            std::get<std::int64_t>(values[table.column("deposits")]),
            std::get<std::int64_t>(values[table.column("balance")])};
    return rows;
}

}  // namespace factstr::testing
