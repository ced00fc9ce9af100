// A tour of the contract on the embedded default: append, query, append_if with a conflict,
// and a durable stream that resumes where it left off.
//
//   quickstart [STORE_URL]      (default: sqlite:./facts.db)
#include <factstr/factstr.hpp>

#include <iostream>

int main(int argc, char** argv) try {
    const std::string url = argc > 1 ? argv[1] : "sqlite:./facts.db";
    factstr::Store store = factstr::open(url);
    std::cout << "store: " << url << " (head " << store.head() << ")\n";

    // Open an account and deposit into it: one batch, one consecutive range.
    auto opened = store.append({
        {"account-opened", R"({"accountId":"a1","owner":"Ada"})"},
        {"money-deposited", R"({"accountId":"a1","amount":100})"},
    });
    std::cout << "appended " << opened.committed_count << " facts as "
              << opened.first_sequence_number << ".." << opened.last_sequence_number << "\n";

    // The command's context: everything that happened to account a1.
    factstr::EventQuery account{{{factstr::EventFilter{std::nullopt, {{R"({"accountId":"a1"})"}}}}},
                                std::nullopt};
    auto context = store.query(account);
    std::cout << "account a1 has " << context.event_records.size() << " facts; context version "
              << *context.current_context_version << "\n";

    // Withdraw, on the condition that nobody changed the account since we looked.
    auto withdrawn = store.append_if({{"money-withdrawn", R"({"accountId":"a1","amount":30})"}},
                                     account, context.current_context_version);
    std::cout << "withdrawal: " << (withdrawn ? "committed" : "conflict") << "\n";

    // The same decision again, made on the now stale version, is a conflict, not an error.
    auto stale = store.append_if({{"money-withdrawn", R"({"accountId":"a1","amount":30})"}},
                                 account, context.current_context_version);
    if (auto* conflict = stale.conflict())
        std::cout << "stale withdrawal: conflict (expected version "
                  << conflict->expected_context_version.value_or(0) << ", actual "
                  << conflict->actual_context_version.value_or(0) << ")\n";

    // A durable stream replays what it has not yet handled, then continues live. Run the
    // program twice: the second run replays only the facts appended since the first.
    std::size_t replayed = 0;
    auto subscription = store.stream_all_durable(
        {"quickstart-balance"}, [&](const factstr::Batch& batch) { replayed += batch.size(); });
    std::cout << "durable stream 'quickstart-balance' handled " << replayed
              << " facts during replay; cursor now at " << subscription.position() << "\n";
    subscription.unsubscribe();
    return 0;
} catch (const factstr::Error& e) {
    std::cerr << "error (" << factstr::to_string(e.code()) << "): " << e.what() << "\n";
    return 1;
}
