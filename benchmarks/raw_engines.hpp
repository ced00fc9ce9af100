// The yardsticks: the engine underneath each backend doing the same shape of work as a
// workload, measured in the same run (see README.md). Each returns facts (rows) per second,
// or operations per second where it says so.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "bench.hpp"

namespace factstr::bench {

// ---- raw SQLite (raw_sqlite.cpp): fresh files in the run's directory, the store's journal
// mode (WAL) and synchronous setting -------------------------------------------------------

// Prepared one-row inserts in transactions of `per_transaction` rows (W1, W2, W3, W9).
double raw_sqlite_inserts(const Config& config, std::size_t rows, std::size_t per_transaction);
// W5's broad query read from the store's own file (W3's log, `size` facts): every fact of
// type 'deposited', in order, copied into records; repeated like W5 does.
double raw_sqlite_type_read(const Config& config, std::size_t size);
// W7 (a): one prepared upsert per fact into a table of the derived table's shape.
double raw_sqlite_upserts(const Config& config, std::size_t rows, std::size_t keys);

// ---- raw libpq on the same server (raw_libpq.cpp) ----------------------------------------

// `rows` rows in INSERT statements of `per_statement` rows, each its own transaction (W1, W2).
double raw_pg_inserts(Bench& bench, std::size_t rows, std::size_t per_statement);
// Single-row INSERT transactions from `connections` connections at once (W9).
double raw_pg_concurrent_inserts(Bench& bench, unsigned connections,
                                 std::chrono::milliseconds duration);
// W5's broad query as one prepared SELECT on the current workload's database.
double raw_pg_type_read(Bench& bench, std::size_t size);
// Every row of the current workload's facts table, in order, through a cursor (W6).
double raw_pg_scan(Bench& bench);

// ---- a plain in-memory log (raw_memory.cpp): what an in-memory log with indexes costs at
// least — the payload bytes copied into big arena blocks, a hash map from event type and one
// from each top-level key/value of the payload to a vector of positions ---------------------

// `facts` facts of type 'deposited' appended `per_append` at a time, the payload of fact i
// being payloads[i % payloads.size()] (W1: 1 per append; W2: a batch; W9).
double raw_memory_appends(const std::vector<std::string>& payloads, std::size_t facts,
                          std::size_t per_append);

// W3 and W5 on a plain log filled like `fill(store, size, keys)`, in the store's order: the
// narrow queries, the broad query, then the commands. An op count of 0 skips that part.
struct RawMemoryLogRates {
    double narrow_queries = 0;  // ops/s
    double broad_query = 0;     // facts/s
    double commands = 0;        // ops/s
};
RawMemoryLogRates raw_memory_command_log(std::size_t size, std::size_t keys, std::size_t narrow_ops,
                                         std::size_t command_ops);

}  // namespace factstr::bench
