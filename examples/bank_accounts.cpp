// Bank accounts as a projection: deposits counted and averaged, the balance as a weighted sum
// (deposits − withdrawals), the account's status as a state machine. Declared with the C++
// builder; projections/bank_accounts.json is the same declaration as JSON.
//
//   bank_accounts [STORE_URL]      (default: sqlite:./bank.db)
//
// With SQLite, the derived table is a real table in the store's file:
//   sqlite3 bank.db 'SELECT account_id, deposits, balance, status FROM accounts'
#include <factstr/factstr.hpp>

#include <iostream>

using namespace factstr;
using namespace factstr::projections;

int main(int argc, char** argv) try {
    Store store = open(argc > 1 ? argv[1] : "sqlite:./bank.db");

    StateMachine status;
    status.states = {"open", "frozen", "closed"};
    status.initial = "open";
    status.transitions = {{{"open"}, on({"account-frozen"}), "frozen"},
                          {{"frozen"}, on({"account-unfrozen"}), "open"},
                          {{"open", "frozen"}, on({"account-closed"}), "closed"}};
    Projection accounts("accounts");
    accounts.key_by("accountId")
        .count("deposits", on({"money-deposited"}))
        .average("mean_deposit", on({"money-deposited"}), "amount")
        .weighted_sum(
            "balance",
            {{on({"money-deposited"}), +1, "amount"}, {on({"money-withdrawn"}), -1, "amount"}},
            ColumnType::integer)
        .state_machine("status", status);

    (void)store.append({{"money-deposited", R"({"accountId":"a1","amount":100})"},
                        {"money-deposited", R"({"accountId":"a1","amount":50})"},
                        {"money-withdrawn", R"({"accountId":"a1","amount":30})"},
                        {"money-deposited", R"({"accountId":"b2","amount":10})"},
                        {"account-frozen", R"({"accountId":"b2"})"}});

    Engine engine(store);
    engine.add(accounts);  // creates the table and records the declaration's fingerprint
    engine.start();        // a projector: from its checkpoint, then live
    (void)store.append({{"account-closed", R"({"accountId":"a1"})"}});
    engine.wait_caught_up(std::chrono::seconds(10));

    Table table = engine.read("accounts");
    for (const auto& row : table.rows) {
        std::cout << std::get<std::string>(row[table.column("account_id")])
                  << ": deposits=" << std::get<std::int64_t>(row[table.column("deposits")])
                  << " mean_deposit=" << std::get<double>(row[table.column("mean_deposit")])
                  << " balance=" << std::get<std::int64_t>(row[table.column("balance")])
                  << " status=" << std::get<std::string>(row[table.column("status")]) << "\n";
    }
    for (const ProjectionStatus& s : engine.status())
        std::cout << s.name << ": " << to_string(s.state) << ", checkpoint " << s.checkpoint
                  << " of " << s.head << "\n";
    return 0;
} catch (const std::exception& e) {
    std::cerr << "bank_accounts: " << e.what() << "\n";
    return 1;
}
