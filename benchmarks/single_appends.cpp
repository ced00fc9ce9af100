// W1: single-fact appends, one at a time.
#include "bench.hpp"
#include "raw_engines.hpp"

namespace factstr::bench {

double w1_single_appends(Bench& bench) {
    const bool quick = bench.quick();
    const std::size_t n = bench.memory()                  ? (quick ? 300000 : 2000000)
                          : bench.postgres()              ? (quick ? 1000 : 10000)
                          : bench.config().sync == "full" ? (quick ? 300 : 2000)
                                                          : (quick ? 5000 : 50000);
    Store store = bench.fresh("w1");
    const std::vector<std::string> texts = payloads(1, std::min<std::size_t>(n, 10000), 1000);
    auto start = Clock::now();
    for (std::size_t i = 0; i < n; ++i)
        (void)store.append({NewEvent{"deposited", texts[i % texts.size()]}});
    Result r{"W1", "single-fact appends", n / seconds_since(start)};
    if (bench.memory()) r.raw_rate = raw_memory_appends(texts, n, 1);
    if (bench.sqlite()) r.raw_rate = raw_sqlite_inserts(bench.config(), n, 1);
    if (bench.postgres()) r.raw_rate = raw_pg_inserts(bench, n, 1);
    bench.add(r);
    return r.raw_rate;
}

}  // namespace factstr::bench
