// W2: batched appends.
#include <fmt/format.h>

#include "bench.hpp"
#include "raw_engines.hpp"

namespace factstr::bench {

void w2_batches(Bench& bench, std::size_t batch) {
    const bool quick = bench.quick();
    const std::size_t total = bench.memory()                  ? (quick ? 500000 : 2000000)
                              : bench.postgres()              ? (quick ? 20000 : 200000)
                              : bench.config().sync == "full" ? (quick ? 20000 : 200000)
                                                              : (quick ? 50000 : 500000);
    const std::size_t batches = std::max<std::size_t>(1, total / batch);
    Store store = bench.fresh("w2");
    const std::vector<std::string> texts = payloads(2, batch, 1000);
    std::vector<NewEvent> proto;
    for (const std::string& text : texts)
        proto.push_back({"deposited", text});
    auto start = Clock::now();
    for (std::size_t b = 0; b < batches; ++b)
        (void)store.append(proto);
    Result r{"W2", fmt::format("batches of {}", batch), batches * batch / seconds_since(start)};
    if (bench.memory()) r.raw_rate = raw_memory_appends(texts, batches * batch, batch);
    if (bench.sqlite()) r.raw_rate = raw_sqlite_inserts(bench.config(), batches * batch, batch);
    if (bench.postgres()) r.raw_rate = raw_pg_inserts(bench, batches * batch, batch);
    bench.add(r);
}

}  // namespace factstr::bench
