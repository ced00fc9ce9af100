// W6: durable catch-up over a filled log, then live delivery latency.
#include <fmt/format.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "bench.hpp"
#include "raw_engines.hpp"

namespace factstr::bench {

void w6_streams(Bench& bench) {
    const std::size_t size = bench.quick() ? (bench.postgres() ? 100000 : 200000) : 1000000;
    Store store = bench.fresh("w6");
    fill(store, size, 10000);
    std::atomic<std::size_t> seen{0};
    auto start = Clock::now();
    auto subscription = store.stream_all_durable({"bench"}, [&](const Batch& batch) {
        seen.fetch_add(batch.size(), std::memory_order_relaxed);
    });
    Result replay{"W6", fmt::format("durable replay of {} facts", size),
                  seen / seconds_since(start)};
    subscription.unsubscribe();
    if (bench.postgres()) replay.raw_rate = raw_pg_scan(bench);
    bench.add(replay);

    std::mutex mutex;
    std::condition_variable arrived;
    Clock::time_point delivered;
    bool got = false;
    auto live = store.stream_all([&](const Batch&) {
        std::lock_guard lock(mutex);
        delivered = Clock::now();
        got = true;
        arrived.notify_all();
    });
    std::vector<double> latencies;
    const int samples = bench.quick() ? 200 : 2000;
    for (int i = 0; i < samples; ++i) {
        auto t0 = Clock::now();
        (void)store.append({{"ping", "{}"}});
        std::unique_lock lock(mutex);
        arrived.wait(lock, [&] { return got; });
        got = false;
        latencies.push_back(microseconds_between(t0, delivered));
    }
    live.unsubscribe();
    std::sort(latencies.begin(), latencies.end());
    Result r{"W6", "live delivery latency (append -> handler)", samples / 1.0, "samples"};
    set_percentiles(r, latencies);
    r.rate = 0;
    bench.add(r);
}

}  // namespace factstr::bench
