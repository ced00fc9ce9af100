// factstr demo: the bank example. Opens accounts, deposits, withdraws and transfers with
// append_if (the account's facts are the context), shows a conflict and its retry, and prints
// a summary. Each run adds a new set of accounts (suffix -2, -3, … after the first run).
#include <map>
#include <memory>

#include <fmt/color.h>
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "common.hpp"

namespace fcli {
namespace {

using factstr::EventFilter;
using factstr::EventQuery;

struct DemoOptions {};

std::string jstr(std::string_view text) {
    std::string out;
    factstr::json::append_quoted(out, text);
    return out;
}

// Everything that happened to one account: opened, deposits, withdrawals, transfers in/out.
EventQuery account_context(const std::vector<std::string>& accounts) {
    EventFilter filter;
    filter.payload_predicates.emplace();
    for (const auto& account : accounts) {
        filter.payload_predicates->push_back("{\"accountId\":" + jstr(account) + "}");
        filter.payload_predicates->push_back("{\"from\":" + jstr(account) + "}");
        filter.payload_predicates->push_back("{\"to\":" + jstr(account) + "}");
    }
    return EventQuery{std::vector<EventFilter>{filter}, std::nullopt};
}

struct Account {
    bool open = false;
    double balance = 0;
};

// Folds an account's facts into its state.
Account fold(const std::vector<factstr::EventRecord>& records, const std::string& account) {
    Account state;
    for (const auto& record : records) {
        auto payload = factstr::json::Value::parse(record.payload, "payload");
        double amount = 0;
        std::string id, from, to;
        for (const auto& [key, value] : payload.members) {
            if (key == "amount")
                amount = value.kind == factstr::json::Value::Kind::int64    ? double(value.int64)
                         : value.kind == factstr::json::Value::Kind::uint64 ? double(value.uint64)
                                                                            : value.number;
            if (key == "accountId") id = value.string;
            if (key == "from") from = value.string;
            if (key == "to") to = value.string;
        }
        if (record.event_type == "AccountOpened" && id == account) state.open = true;
        if (record.event_type == "MoneyDeposited" && id == account) state.balance += amount;
        if (record.event_type == "MoneyWithdrawn" && id == account) state.balance -= amount;
        if (record.event_type == "MoneyTransferred") {
            if (from == account) state.balance -= amount;
            if (to == account) state.balance += amount;
        }
    }
    return state;
}

class Bank {
  public:
    Bank(factstr::Store& store, bool color) : store_(store), color_(color) {}

    void say(const std::string& text) { write_stdout(text + "\n"); }
    void step(const std::string& text) {
        write_stdout(color_ ? fmt::format("{}\n", fmt::styled(text, fmt::emphasis::bold))
                            : text + "\n");
    }

    // Opens an account unless it exists: the context is the account's AccountOpened fact,
    // expected to be absent.
    void open_account(const std::string& id, const std::string& owner) {
        EventQuery context{std::vector<EventFilter>{EventFilter{
                               std::vector<std::string>{"AccountOpened"},
                               std::vector<std::string>{"{\"accountId\":" + jstr(id) + "}"}}},
                           std::nullopt};
        auto outcome = store_.append_if(
            {{"AccountOpened", "{\"accountId\":" + jstr(id) + ",\"owner\":" + jstr(owner) + "}"}},
            context, std::nullopt);
        if (outcome)
            say(fmt::format("  opened {} for {} (#{})", id, owner,
                            outcome.append_result()->first_sequence_number));
        else
            say(fmt::format("  {} already exists", id));
    }

    // Withdraws when the balance covers it, decided on the account's facts at `version`.
    bool withdraw(const std::string& id, int amount, bool show) {
        auto context = account_context({id});
        auto facts = store_.query(context);
        const Account state = fold(facts.event_records, id);
        if (state.balance < amount) {
            say(fmt::format("  withdraw {} from {}: refused, balance is only {}", amount, id,
                            state.balance));
            return false;
        }
        auto outcome = store_.append_if(
            {{"MoneyWithdrawn",
              fmt::format("{{\"accountId\":{},\"amount\":{}}}", jstr(id), amount)}},
            context, facts.current_context_version);
        if (show)
            say(fmt::format("  withdraw {} from {} (context version {}): {}", amount, id,
                            version_text(facts.current_context_version),
                            outcome ? fmt::format("committed as #{}",
                                                  outcome.append_result()->first_sequence_number)
                                    : "conflict"));
        return outcome.committed();
    }

    bool transfer(const std::string& from, const std::string& to, int amount,
                  const std::string& transfer_id) {
        auto context = account_context({from, to});
        auto facts = store_.query(context);
        const Account source = fold(facts.event_records, from);
        if (source.balance < amount) {
            say(fmt::format("  transfer {} {} -> {}: refused, balance is only {}", amount, from, to,
                            source.balance));
            return false;
        }
        auto outcome = store_.append_if(
            {{"MoneyTransferred",
              fmt::format("{{\"transferId\":{},\"from\":{},\"to\":{},\"amount\":{}}}",
                          jstr(transfer_id), jstr(from), jstr(to), amount)}},
            context, facts.current_context_version);
        say(fmt::format("  transfer {} {} -> {} (context version {}): {}", amount, from, to,
                        version_text(facts.current_context_version),
                        outcome ? fmt::format("committed as #{}",
                                              outcome.append_result()->first_sequence_number)
                                : "conflict"));
        return outcome.committed();
    }

    double balance(const std::string& id) {
        return fold(store_.query(account_context({id})).event_records, id).balance;
    }

    factstr::Store& store_;
    bool color_;
};

int run(const Globals& globals) {
    factstr::Store store = open_store(globals);
    const bool color = use_color(globals);
    Bank bank(store, color);
    const factstr::SequenceNumber head_before = store.head();

    // Which run is this? Count earlier demo accounts named alice, alice-2, …
    EventQuery alices{
        std::vector<EventFilter>{EventFilter{std::vector<std::string>{"AccountOpened"},
                                             std::vector<std::string>{"{\"owner\":\"Alice\"}"}}},
        std::nullopt};
    const auto run_number = store.query(alices).event_records.size() + 1;
    const std::string suffix = run_number == 1 ? "" : fmt::format("-{}", run_number);
    const std::string alice = "alice" + suffix, bob = "bob" + suffix, carol = "carol" + suffix;

    bank.step(fmt::format("factstr demo — the bank example on {} (run {})", store.describe(),
                          run_number));
    bank.step("1. open accounts (append_if: only when the account does not exist yet)");
    bank.open_account(alice, "Alice");
    bank.open_account(bob, "Bob");
    bank.open_account(carol, "Carol");
    bank.open_account(alice, "Alice");  // a second attempt is refused by its context

    bank.step("2. deposits (one append, one batch, one consecutive range)");
    auto deposits = store.append({
        {"MoneyDeposited", fmt::format("{{\"accountId\":{},\"amount\":100}}", jstr(alice))},
        {"MoneyDeposited", fmt::format("{{\"accountId\":{},\"amount\":50}}", jstr(bob))},
        {"MoneyDeposited", fmt::format("{{\"accountId\":{},\"amount\":20}}", jstr(carol))},
    });
    bank.say(fmt::format("  3 deposits committed as #{}..#{}", deposits.first_sequence_number,
                         deposits.last_sequence_number));

    bank.step("3. withdrawals (append_if on the account's facts)");
    bank.withdraw(bob, 30, true);
    bank.withdraw(carol, 500, true);

    bank.step("4. transfers (append_if on both accounts' facts)");
    bank.transfer(alice, bob, 40, "t1" + suffix);
    bank.transfer(bob, carol, 25, "t2" + suffix);

    bank.step("5. a conflict: two tellers decide on the same version of carol's account");
    auto context = account_context({carol});
    auto seen = store.query(context);
    bank.say(fmt::format("  teller A reads carol's account at context version {}",
                         version_text(seen.current_context_version)));
    auto other = store.append(
        {{"MoneyDeposited", fmt::format("{{\"accountId\":{},\"amount\":5}}", jstr(carol))}});
    bank.say(fmt::format("  teller B deposits 5 into carol's account (#{})",
                         other.first_sequence_number));
    auto stale = store.append_if(
        {{"MoneyWithdrawn", fmt::format("{{\"accountId\":{},\"amount\":40}}", jstr(carol))}},
        context, seen.current_context_version);
    if (const auto* conflict = stale.conflict())
        bank.say(
            fmt::format("  teller A withdraws 40 on version {}: CONFLICT (expected {}, actual "
                        "{}), nothing written",
                        version_text(seen.current_context_version),
                        version_text(conflict->expected_context_version),
                        version_text(conflict->actual_context_version)));
    bank.say("  teller A re-reads and retries:");
    bank.withdraw(carol, 40, true);

    bank.step("summary");
    const factstr::SequenceNumber head_after = store.head();
    bank.say(fmt::format("  facts appended by this run: {} (#{}..#{}); head {}",
                         head_after - head_before, head_before + 1, head_after, head_after));
    for (const auto& id : {alice, bob, carol})
        bank.say(fmt::format("  balance {:<10} {:>6}", id, bank.balance(id)));
    bank.say(fmt::format("  try: factstr --store {} query --where '{{\"accountId\":\"{}\"}}'",
                         globals.store_url, carol));
    return exit_ok;
}

}  // namespace

Command add_demo(CLI::App& root, const Globals& globals) {
    CLI::App* app = root.add_subcommand(
        "demo",
        "Append the bank example (accounts, deposits, withdrawals, transfers with "
        "append_if, one shown conflict) and print a summary");
    app->footer("Running it again adds a second set of accounts (alice-2, bob-2, carol-2).");
    return {app, [&globals] { return run(globals); }};
}

}  // namespace fcli
