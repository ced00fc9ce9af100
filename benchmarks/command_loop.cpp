// W3, the command loop — query a narrow context, then append_if on its version — and W5, the
// queries, on the same log (filled once for both, W5 first), at several log sizes.
#include <fmt/format.h>

#include <stdexcept>

#include "bench.hpp"
#include "raw_engines.hpp"

namespace factstr::bench {
namespace {

// W3's context: one type and one account. The command appends a fact of another type, so
// the context keeps its size however many commands run and the figure shows how the cost
// grows with the log, not with the context.
EventQuery deposits_context(std::size_t account) {
    return EventQuery{
        {{EventFilter{{{"deposited"}}, {{fmt::format(R"({{"accountId":"a{}"}})", account)}}}}},
        std::nullopt};
}

std::size_t narrow_query_ops(const Bench& bench) {
    const bool quick = bench.quick();
    return bench.memory()     ? (quick ? 20000 : 100000)
           : bench.postgres() ? (quick ? 300 : 3000)
                              : (quick ? 2000 : 20000);
}

std::size_t command_ops(const Bench& bench) {
    const bool quick = bench.quick();
    return bench.memory()                  ? (quick ? 50000 : 200000)
           : bench.postgres()              ? (quick ? 300 : 2000)
           : bench.config().sync == "full" ? (quick ? 200 : 1000)
                                           : (quick ? 2000 : 20000);
}

// W5: a narrow query (type + a payload predicate: one account's ~10 deposits) and a broad
// one (by type: every fact of the log, which holds only deposits) on W3's log. The broad
// query is compared with the raw engine reading the same rows in the same order into
// memory (SQLite: the store's own file through the C API, its type index; PostgreSQL:
// one SELECT over libpq; memory: the plain log of raw_memory.cpp, which also gives the
// narrow query its yardstick).
void w5_queries(Bench& bench, Store& store, std::size_t size, std::size_t keys,
                const RawMemoryLogRates& raw_memory) {
    const std::size_t ops = narrow_query_ops(bench);
    std::mt19937_64 random(5);
    std::size_t returned = 0;
    const Timed timed = time_each(ops, [&] {
        returned += store.query(deposits_context(random() % keys)).event_records.size();
    });
    Result narrow{"W5",
                  fmt::format("narrow query (type + accountId, {:.1f} facts), log {} facts",
                              static_cast<double>(returned) / ops, size),
                  ops / timed.seconds, "ops/s"};
    timed.percentiles(narrow);
    narrow.raw_rate = raw_memory.narrow_queries;
    bench.add(narrow);

    // Broad: repeated until a second has passed (at least once, at most 10 times).
    const EventQuery by_type{{{EventFilter{{{"deposited"}}, std::nullopt}}}, std::nullopt};
    std::vector<double> latencies;
    std::size_t facts = 0, runs = 0;
    const auto start = Clock::now();
    do {
        auto t0 = Clock::now();
        const auto result = store.query(by_type);
        if (result.event_records.size() != size)
            throw std::runtime_error("W5: the broad query returned a wrong number of facts");
        facts += result.event_records.size();
        ++runs;
        latencies.push_back(microseconds_between(t0, Clock::now()));
    } while (runs < 10 && seconds_since(start) < 1.0);
    Result broad{"W5", fmt::format("broad query (by type, all {} facts), {} runs", size, runs),
                 facts / seconds_since(start)};
    std::sort(latencies.begin(), latencies.end());
    broad.p50_us = latencies[latencies.size() / 2];
    broad.raw_rate = raw_memory.broad_query;
    if (bench.sqlite()) broad.raw_rate = raw_sqlite_type_read(bench.config(), size);
    if (bench.postgres()) broad.raw_rate = raw_pg_type_read(bench, size);
    bench.add(broad);
}

}  // namespace

// `single_insert_raw` (SQLite, PostgreSQL: one raw single-row insert; 0: none) is W3's
// yardstick there; memory measures the same commands on the plain log.
void w3_command_log(Bench& bench, std::size_t size, double single_insert_raw) {
    const bool commands = bench.want("W3"), queries = bench.want("W5");
    if (!commands && !queries) return;
    const std::size_t keys = std::clamp<std::size_t>(size / 10, 1000, 100000);
    // Memory: the plain log goes first, so that its memory is released before the store fills.
    RawMemoryLogRates raw_memory;
    if (bench.memory())
        raw_memory = raw_memory_command_log(size, keys, queries ? narrow_query_ops(bench) : 0,
                                            commands ? command_ops(bench) : 0);
    Store store = bench.fresh("w3");
    fill(store, size, keys);
    if (queries) w5_queries(bench, store, size, keys, raw_memory);
    if (!commands) return;
    const std::size_t ops = command_ops(bench);
    std::mt19937_64 random(4);
    std::size_t conflicts = 0;
    const Timed timed = time_each(ops, [&] {
        const std::size_t account = random() % keys;
        auto query = deposits_context(account);
        auto context = store.query(query);
        auto outcome = store.append_if(
            {{"withdrawn",
              fmt::format(R"({{"accountId":"a{}","amount":1,"currency":"EUR"}})", account)}},
            query, context.current_context_version);
        if (!outcome) ++conflicts;
    });
    Result r{"W3", fmt::format("query+append_if, log {} facts, {} keys", size, keys),
             ops / timed.seconds, "ops/s"};
    timed.percentiles(r);
    r.raw_rate = bench.memory() ? raw_memory.commands : single_insert_raw;
    if (conflicts) r.detail += fmt::format(" ({} conflicts!)", conflicts);
    bench.add(r);
}

}  // namespace factstr::bench
