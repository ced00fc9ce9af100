// A child process for the PostgreSQL multi-process tests. URL is a libpq connection string or
// postgres:// URL naming the test's database. Modes:
//   contend URL N ID   N rounds of query + append_if on three shared accounts, each append a
//                      batch of 1 to 3 facts of one account; prints
//                      "ok FIRST LAST ACCOUNT EXPECTED" or "conflict ACCOUNT EXPECTED ACTUAL"
//                      (versions are sequence numbers or "none")
//   tail URL N         live stream_all; prints "ready", then one sequence number per line
//                      until N facts arrived (N = 0: until a fact of type "stop" arrived)
#include <factstr/factstr.hpp>

#include "../support/contend.hpp"

#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <random>
#include <string>

using namespace factstr;
using namespace factstr::testing;

namespace {

int contend(const std::string& url, int rounds, int id) {
    Store store = open(url);
    std::mt19937 random(static_cast<unsigned>(id) * 7919u + 17u);
    for (int i = 0; i < rounds; ++i) {
        const std::string account = "acc" + std::to_string(random() % 3);
        const auto query = account_query(account);
        const auto context = store.query(query);
        std::vector<NewEvent> events;
        const int count = 1 + static_cast<int>(random() % 3);
        for (int e = 0; e < count; ++e)
            events.push_back({"deposited", R"({"account":")" + account +
                                               R"(","amount":1,"worker":)" + std::to_string(id) +
                                               R"(,"round":)" + std::to_string(i) + "}"});
        const auto outcome =
            store.append_if(std::move(events), query, context.current_context_version);
        report_outcome(outcome, account, context.current_context_version);
    }
    std::cout.flush();
    return 0;
}

int tail(const std::string& url, std::size_t expected) {
    Store store = open(url);
    std::mutex mutex;
    std::condition_variable changed;
    std::size_t seen = 0;
    bool stop = false;
    auto subscription = store.stream_all([&](const Batch& batch) {
        std::lock_guard lock(mutex);
        for (const auto& record : batch) {
            std::cout << record.sequence_number << "\n";
            if (record.event_type == "stop") stop = true;
        }
        std::cout.flush();
        seen += batch.size();
        changed.notify_all();
    });
    std::cout << "ready" << std::endl;
    std::unique_lock lock(mutex);
    if (!changed.wait_for(lock, std::chrono::seconds(300),
                          [&] { return expected > 0 ? seen >= expected : stop; }))
        return 3;
    lock.unlock();
    subscription.unsubscribe();
    return 0;
}

}  // namespace

int main(int argc, char** argv) try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "contend" && argc == 5)
        return contend(argv[2], std::stoi(argv[3]), std::stoi(argv[4]));
    if (mode == "tail" && argc == 4) return tail(argv[2], std::stoul(argv[3]));
    std::cerr << "usage: postgres_test_worker contend URL N ID | tail URL N\n";
    return 2;
} catch (const std::exception& e) {
    std::cerr << "postgres_test_worker: " << e.what() << "\n";
    return 1;
}
