// What factstr-bench's files share: the results, the run's configuration and state (Bench),
// timing, the payloads and logs the workloads append, and the workloads themselves (one file
// per family; the raw yardsticks are declared in raw_engines.hpp).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <factstr/factstr.hpp>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace factstr::bench {

using Clock = std::chrono::steady_clock;

// One printed row (and one JSON object of "results").
struct Result {
    std::string workload;
    std::string detail;
    double rate = 0;  // facts/s or ops/s
    std::string unit = "facts/s";
    double p50_us = -1, p99_us = -1;
    double raw_rate = 0;  // the raw engine's rate for the same shape, 0 = none
    double value = -1;    // for non-rate figures (bytes per fact)
};

struct Config {
    std::string backend = "memory";
    std::string sync = "full";
    std::string url;  // postgres: the server
    bool quick = false;
    bool json = false;
    std::string json_file;
    std::string dir;
    std::vector<std::string> only;  // workloads to run (W1…W9); empty: all
};

inline double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

inline double microseconds_between(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double, std::micro>(to - from).count();
}

// The p50 and p99 of sorted latencies (µs) into `r`.
inline void set_percentiles(Result& r, const std::vector<double>& sorted_us) {
    r.p50_us = sorted_us[sorted_us.size() / 2];
    r.p99_us = sorted_us[sorted_us.size() * 99 / 100];
}

// Runs `op` `ops` times: the seconds it took in all, and each run's latency (µs), sorted.
struct Timed {
    double seconds = 0;
    std::vector<double> latencies_us;
    void percentiles(Result& r) const { set_percentiles(r, latencies_us); }
};

template <class Op>
Timed time_each(std::size_t ops, Op&& op) {
    Timed timed;
    timed.latencies_us.reserve(ops);
    const auto start = Clock::now();
    for (std::size_t i = 0; i < ops; ++i) {
        const auto t0 = Clock::now();
        op();
        timed.latencies_us.push_back(microseconds_between(t0, Clock::now()));
    }
    timed.seconds = seconds_since(start);
    std::sort(timed.latencies_us.begin(), timed.latencies_us.end());
    return timed;
}

// The deposit every workload appends (~120 bytes, four top-level scalars), over `keys`
// accounts: {"accountId":"a17","amount":42,"currency":"EUR","note":"…"}.
std::string payload(std::mt19937_64& random, std::size_t keys);
// The first `count` payloads drawn from a generator seeded with `seed`.
std::vector<std::string> payloads(unsigned seed, std::size_t count, std::size_t keys);

// Fills a log with `size` deposits over `keys` accounts, in batches of 1000 (seed 3).
void fill(Store& store, std::size_t size, std::size_t keys);

// W4's context: one account's deposits and withdrawals. It includes the commands' own facts,
// so concurrent writers conflict.
EventQuery account_context(std::size_t account);

long peak_rss_kb();
long current_rss_kb();

// The run: its configuration, the results so far, and on PostgreSQL the databases it made.
class Bench {
  public:
    explicit Bench(Config config) : config_(std::move(config)) {}
    ~Bench();  // drops the PostgreSQL databases this run created
    Bench(const Bench&) = delete;
    Bench& operator=(const Bench&) = delete;

    const Config& config() const { return config_; }
    bool memory() const { return config_.backend == "memory"; }
    bool sqlite() const { return config_.backend == "sqlite"; }
    bool postgres() const { return config_.backend == "postgres"; }
    bool quick() const { return config_.quick; }
    bool want(const char* workload) const;

    // A fresh, empty store for workload `name` (SQLite: a new file in the run's directory;
    // PostgreSQL: a new database, the previous workload's dropped).
    Store fresh(const std::string& name);
    // The store URL of workload `name` (memory and SQLite).
    std::string url(const std::string& name) const;
    std::string sqlite_path(const std::string& name) const;
    // What a worker process opens to reach the store of workload `name`: its URL, or on
    // PostgreSQL "server URL\ndatabase" (see open_worker_store).
    std::string worker_target(const std::string& name) const;

    // PostgreSQL: the database of the current workload's store, and the one of the raw
    // yardsticks (created at the first call).
    const std::string& current_database() const { return current_database_; }
    const std::string& raw_database();

    void add(Result r) { results_.push_back(std::move(r)); }

    void run();
    void print() const;

  private:
    void run_postgres();
    void drop_database(std::string& name);
    std::string json() const;

    Config config_;
    std::vector<Result> results_;
    std::string current_database_, raw_database_, server_version_;
    int databases_ = 0;
};

// The store a worker process was given by Bench::worker_target.
Store open_worker_store(const std::string& target);

// ---- the workloads, one family per file ---------------------------------------------------
// Each adds its rows to `bench`.

// single_appends.cpp. Returns the raw single-fact rate it measured (0: none).
double w1_single_appends(Bench& bench);
// batches.cpp
void w2_batches(Bench& bench, std::size_t batch);
// command_loop.cpp: W3 and W5 on one log of `size` facts. `single_insert_raw`: W3's yardstick
// on SQLite and PostgreSQL (0: none); memory measures its own.
void w3_command_log(Bench& bench, std::size_t size, double single_insert_raw);
// concurrency.cpp
void w4_threads(Bench& bench, unsigned threads);
void w9_concurrent_appends(Bench& bench, unsigned threads, double raw_single);
// multi_process.cpp
void w4_processes(Bench& bench, unsigned processes);
// streams.cpp
void w6_streams(Bench& bench);
// projections.cpp
void w7_projections(Bench& bench);
// memory_size.cpp
void w8_memory_size(Bench& bench, std::size_t size);

// The worker processes W4 and W7 re-execute factstr-bench as (hidden options of main);
// each returns the process's exit code.
int w4_worker(const std::string& target, long long start_ns, int ms, unsigned seed);
int w7_writer(const std::string& target, int rate, std::size_t count);

}  // namespace factstr::bench
