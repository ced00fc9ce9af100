// Threads sharing one store: W4, concurrent commands on overlapping keys, and W9, concurrent
// single-fact appends (what group commit buys).
#include <fmt/format.h>

#include <atomic>
#include <thread>

#include "bench.hpp"
#include "raw_engines.hpp"

namespace factstr::bench {

// W4: concurrent writers doing W3's command pattern on overlapping keys.
void w4_threads(Bench& bench, unsigned threads) {
    Store store = bench.fresh("w4");
    const std::size_t keys = 1000;
    fill(store, 10000, keys);
    const auto duration = std::chrono::milliseconds(bench.quick() ? 500 : 3000);
    std::atomic<std::size_t> ok{0}, conflicts{0};
    std::vector<std::thread> workers;
    auto start = Clock::now();
    for (unsigned t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            std::mt19937_64 random(100 + t);
            while (Clock::now() - start < duration) {
                const std::size_t account = random() % keys;
                auto query = account_context(account);
                auto context = store.query(query);
                auto outcome = store.append_if(
                    {{"withdrawn", fmt::format(R"({{"accountId":"a{}","amount":1}})", account)}},
                    query, context.current_context_version);
                (outcome ? ok : conflicts).fetch_add(1);
            }
        });
    }
    for (auto& w : workers)
        w.join();
    const double elapsed = seconds_since(start);
    Result r{"W4",
             fmt::format("{} threads, query+append_if, 1000 keys ({} ok, {} conflicts)", threads,
                         ok.load(), conflicts.load()),
             (ok + conflicts) / elapsed, "ops/s"};
    bench.add(r);
}

// W9 (beyond the issue's list): concurrent single-fact appends from one store — what group
// commit buys. `raw_single` is the rate of one raw writer appending one fact at a time
// (SQLite: one row per transaction; memory: the plain log); PostgreSQL compares with 8 raw
// connections.
void w9_concurrent_appends(Bench& bench, unsigned threads, double raw_single) {
    Store store = bench.fresh("w9");
    const auto duration = std::chrono::milliseconds(bench.quick() ? 1000 : 3000);
    std::atomic<std::size_t> appended{0};
    std::vector<std::thread> workers;
    auto start = Clock::now();
    for (unsigned t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            std::mt19937_64 random(200 + t);
            const std::string body = payload(random, 1000);
            while (Clock::now() - start < duration) {
                (void)store.append({NewEvent{"deposited", body}});
                appended.fetch_add(1, std::memory_order_relaxed);
            }
        });
    }
    for (auto& w : workers)
        w.join();
    Result r{"W9",
             fmt::format("{} threads, single-fact appends (raw: {})", threads,
                         bench.postgres() ? "8 connections" : "1 writer, 1 row per transaction"),
             appended / seconds_since(start)};
    if (bench.postgres()) r.raw_rate = raw_pg_concurrent_inserts(bench, 8, duration);
    if (raw_single > 0) r.raw_rate = raw_single;
    bench.add(r);
}

}  // namespace factstr::bench
