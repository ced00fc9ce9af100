// factstr-bench: named workloads on a chosen backend, each compared in the same run with the
// raw engine underneath where one exists. Prints a table, or JSON with --json.
//
//   factstr-bench --backend memory|sqlite [--sync full|normal] [--quick] [--json]
//   factstr-bench --backend postgres [--url URL] [--quick] [--json]
//
// Memory: the raw figures are a plain in-memory log in the same run (raw_memory.cpp: the
// payloads copied into arena blocks, indexed by hash maps from event type and top-level
// key/value to positions) doing the same appends, queries and commands (W1, W2, W3, W5, W9).
//
// PostgreSQL (URL: a libpq connection string or postgres:// URL of a server; default
// $FACTSTR_TEST_POSTGRES_URL): every workload runs on a freshly bootstrapped database (dropped
// afterwards), and the raw figures are libpq on the same server, in the same run, into a
// table of the same shape (same columns, primary key, event-type index and jsonb GIN index):
// single-row INSERT transactions (W1, W3), one multi-row INSERT per transaction (W2),
// single-row INSERT transactions from 8 connections at once (W9, the group-commit
// comparison), and a full scan of the facts table with a cursor (W6 replay).
//
// This file: the command line, which workloads run in which order, and the table and JSON
// output. The workloads are in one file per family (bench.hpp lists them).
#include <fmt/format.h>
#include <sqlite3.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "bench.hpp"
#include "pg_connection.hpp"
#include "raw_engines.hpp"

namespace factstr::bench {

void Bench::run_postgres() {
    {
        PgConn server(config_.url, "");
        server_version_ = server.value("SHOW server_version");
    }
    double raw_single = 0;
    if (want("W1") || want("W3")) raw_single = w1_single_appends(*this);
    if (want("W2")) {
        w2_batches(*this, 100);
        w2_batches(*this, 10000);
    }
    std::vector<std::size_t> sizes = {10000, 100000, 1000000};
    if (config_.quick) sizes = {10000, 100000};
    for (std::size_t size : sizes)
        w3_command_log(*this, size, raw_single);
    if (want("W4")) {
        for (unsigned threads : {1u, 4u, 16u})
            w4_threads(*this, threads);
        for (unsigned processes : {4u, 16u})
            w4_processes(*this, processes);
    }
    if (want("W9")) w9_concurrent_appends(*this, 16, 0);
    if (want("W6")) w6_streams(*this);
    if (want("W7")) w7_projections(*this);
}

void Bench::run() {
    if (postgres()) {
        run_postgres();
        return;
    }
    if (want("W1")) w1_single_appends(*this);
    if (want("W2")) {
        w2_batches(*this, 100);
        w2_batches(*this, 10000);
    }
    // One writer appending one fact at a time: W3's ratio on SQLite, W9's on both.
    double raw_single = 0;
    if (sqlite() && (want("W3") || want("W9")))
        raw_single = raw_sqlite_inserts(config_, config_.sync == "full" ? 1000 : 20000, 1);
    if (memory() && want("W9"))
        raw_single =
            raw_memory_appends(payloads(1, 10000, 1000), config_.quick ? 300000 : 2000000, 1);
    std::vector<std::size_t> sizes = {10000, 100000, 1000000};
    if (config_.quick) sizes = {10000, 100000};
    if (memory() && !config_.quick) sizes.push_back(10000000);
    for (std::size_t size : sizes)
        w3_command_log(*this, size, sqlite() ? raw_single : 0);
    if (want("W4")) {
        for (unsigned threads : {1u, 4u, 16u})
            w4_threads(*this, threads);
        if (sqlite())
            for (unsigned processes : {4u, 16u})
                w4_processes(*this, processes);
    }
    if (want("W9")) w9_concurrent_appends(*this, 16, raw_single);
    if (want("W6")) w6_streams(*this);
    if (want("W7")) w7_projections(*this);
    if (memory() && want("W8")) {
        w8_memory_size(*this, 1000000);
        if (!config_.quick) w8_memory_size(*this, 10000000);
    }
}

std::string Bench::json() const {
    std::string out = fmt::format(
        "{{\"backend\":\"{}\",\"sync\":\"{}\",\"quick\":{},\"cores\":{},\"sqlite_version\":\"{}"
        "\",\"postgres_server_version\":\"{}\",\"peak_rss_kb\":{},\"results\":[",
        config_.backend, config_.sync, config_.quick, std::thread::hardware_concurrency(),
        sqlite3_libversion(), server_version_, peak_rss_kb());
    for (std::size_t i = 0; i < results_.size(); ++i) {
        const Result& r = results_[i];
        out += fmt::format(
            "{}{{\"workload\":\"{}\",\"detail\":\"{}\",\"rate\":{:.1f},\"unit\":\"{}\",\"p50_"
            "us\":{:.1f},\"p99_us\":{:.1f},\"raw_rate\":{:.1f},\"ratio_to_raw\":{:.3f},"
            "\"value\":{:.1f}}}",
            i ? "," : "", r.workload, r.detail, r.rate, r.unit, r.p50_us, r.p99_us, r.raw_rate,
            r.raw_rate > 0 ? r.rate / r.raw_rate : 0.0, r.value);
    }
    out += "]}";
    return out;
}

void Bench::print() const {
    if (!config_.json_file.empty()) {
        std::ofstream file(config_.json_file);
        file << json() << "\n";
    }
    if (config_.json) {
        fmt::print("{}\n", json());
        return;
    }
    if (postgres())
        fmt::print(
            "backend postgres (server {}, raw = libpq on the same server), {} cores, peak RSS "
            "{} MiB\n",
            server_version_, std::thread::hardware_concurrency(), peak_rss_kb() / 1024);
    else
        fmt::print("backend {} (sync {}), {} cores, SQLite {}, peak RSS {} MiB\n", config_.backend,
                   config_.sync, std::thread::hardware_concurrency(), sqlite3_libversion(),
                   peak_rss_kb() / 1024);
    fmt::print("{:<4} {:<62} {:>14} {:>9} {:>9} {:>12} {:>7}\n", "", "workload", "rate", "p50 µs",
               "p99 µs", "raw rate", "ratio");
    for (const Result& r : results_) {
        std::string rate = r.value >= 0 ? fmt::format("{:.0f} {}", r.value, r.unit)
                           : r.rate > 0 ? fmt::format("{:.0f}", r.rate)
                                        : "";
        fmt::print("{:<4} {:<62} {:>14} {:>9} {:>9} {:>12} {:>7}\n", r.workload, r.detail, rate,
                   r.p50_us >= 0 ? fmt::format("{:.1f}", r.p50_us) : "",
                   r.p99_us >= 0 ? fmt::format("{:.1f}", r.p99_us) : "",
                   r.raw_rate > 0 ? fmt::format("{:.0f}", r.raw_rate) : "",
                   r.raw_rate > 0 ? fmt::format("{:.2f}", r.rate / r.raw_rate) : "");
    }
}

}  // namespace factstr::bench

int main(int argc, char** argv) {
    using namespace factstr::bench;
    CLI::App app{
        "factstr-bench: workloads against a backend, with the raw engine as the yardstick"};
    Config config;
    app.add_option("--backend", config.backend, "memory, sqlite or postgres")
        ->check(CLI::IsMember({"memory", "sqlite", "postgres"}));
    app.add_option("--url", config.url,
                   "postgres: the server (libpq connection string or postgres:// URL; default "
                   "$FACTSTR_TEST_POSTGRES_URL); a database per workload is created and dropped");
    bool skip_without_server = false;
    app.add_flag("--skip-without-server", skip_without_server,
                 "postgres: exit 0 with a note when no server is given (unless CI=true)");
    app.add_option("--sync", config.sync, "SQLite durability: full or normal")
        ->check(CLI::IsMember({"full", "normal"}));
    app.add_flag("--quick", config.quick, "small sizes: a smoke run in well under a minute");
    app.add_flag("--json", config.json, "print JSON instead of a table");
    app.add_option("--json-file", config.json_file, "also write the JSON results to this file");
    app.add_option("--dir", config.dir, "directory for database files (default: a temporary one)");
    app.add_option("--only", config.only,
                   "run only these workloads (W1 … W9; repeat or comma-separate)")
        ->delimiter(',');
    // W7's writer process (internal): appends `count` single facts at `rate` per second to
    // STORE, printing when each append returned (steady clock, ns) on stdout.
    std::string w7_writer_target;
    int w7_rate = 0;
    std::size_t w7_count = 0;
    app.add_option("--w7-writer", w7_writer_target)->group("");
    app.add_option("--w7-rate", w7_rate)->group("");
    app.add_option("--w7-count", w7_count)->group("");
    // W4's worker process (internal): opens STORE, waits until --w4-start (steady clock, ns),
    // runs the command pattern on 1,000 accounts for --w4-ms, prints "ok conflicts late".
    std::string w4_worker_target;
    long long w4_start = 0;
    int w4_ms = 0;
    unsigned w4_seed = 0;
    app.add_option("--w4-worker", w4_worker_target)->group("");
    app.add_option("--w4-start", w4_start)->group("");
    app.add_option("--w4-ms", w4_ms)->group("");
    app.add_option("--w4-seed", w4_seed)->group("");
    CLI11_PARSE(app, argc, argv);
    if (!w4_worker_target.empty()) return w4_worker(w4_worker_target, w4_start, w4_ms, w4_seed);
    if (!w7_writer_target.empty()) return w7_writer(w7_writer_target, w7_rate, w7_count);
    if (config.backend == "postgres" && config.url.empty()) {
        if (const char* url = std::getenv("FACTSTR_TEST_POSTGRES_URL")) config.url = url;
        if (config.url.empty()) {
            const char* ci = std::getenv("CI");
            if (skip_without_server && !(ci && std::string(ci) == "true")) {
                fmt::print(stderr,
                           "factstr-bench: skipped: no PostgreSQL server (set --url or "
                           "FACTSTR_TEST_POSTGRES_URL)\n");
                return 0;
            }
            fmt::print(
                stderr,
                "factstr-bench: --backend postgres needs --url or FACTSTR_TEST_POSTGRES_URL\n");
            return 2;
        }
    }
    bool own_dir = config.dir.empty();
    if (own_dir) {
        config.dir =
            (std::filesystem::temp_directory_path() / ("factstr-bench-" + std::to_string(getpid())))
                .string();
        std::filesystem::create_directories(config.dir);
    }
    try {
        Bench bench(config);
        bench.run();
        bench.print();
    } catch (const std::exception& e) {
        fmt::print(stderr, "factstr-bench: {}\n", e.what());
        if (own_dir) std::filesystem::remove_all(config.dir);
        return 1;
    }
    if (own_dir) std::filesystem::remove_all(config.dir);
    return 0;
}
