// The run's state (Bench: stores, databases) and what the workloads share: payloads, the
// fill, W4's context, memory figures.
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "bench.hpp"
#include "pg_connection.hpp"

namespace factstr::bench {

std::string payload(std::mt19937_64& random, std::size_t keys) {
    return fmt::format(
        R"({{"accountId":"a{}","amount":{},"currency":"EUR","note":"monthly transfer for invoice {} of the customer account"}})",
        random() % keys, random() % 1000, random() % 100000);
}

std::vector<std::string> payloads(unsigned seed, std::size_t count, std::size_t keys) {
    std::mt19937_64 random(seed);
    std::vector<std::string> out;
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i)
        out.push_back(payload(random, keys));
    return out;
}

void fill(Store& store, std::size_t size, std::size_t keys) {
    std::mt19937_64 random(3);
    std::vector<NewEvent> batch;
    for (std::size_t i = 0; i < size; ++i) {
        batch.push_back({"deposited", payload(random, keys)});
        if (batch.size() == 1000 || i + 1 == size) {
            (void)store.append(std::move(batch));
            batch.clear();
        }
    }
}

EventQuery account_context(std::size_t account) {
    return EventQuery{{{EventFilter{{{"deposited", "withdrawn"}},
                                    {{fmt::format(R"({{"accountId":"a{}"}})", account)}}}}},
                      std::nullopt};
}

long peak_rss_kb() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss;
}

long current_rss_kb() {
    std::ifstream statm("/proc/self/statm");
    long pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

Bench::~Bench() {
    if (!postgres()) return;
    try {
        drop_database(current_database_);
        drop_database(raw_database_);
    } catch (const std::exception&) {
        // Best effort: the databases are named factstr_bench_<pid>_….
    }
}

bool Bench::want(const char* workload) const {
    return config_.only.empty() ||
           std::find(config_.only.begin(), config_.only.end(), workload) != config_.only.end();
}

std::string Bench::url(const std::string& name) const {
    if (memory()) return "memory:";
    return "sqlite:" + sqlite_path(name) + "?sync=" + config_.sync;
}

std::string Bench::sqlite_path(const std::string& name) const {
    return config_.dir + "/" + name + ".db";
}

std::string Bench::worker_target(const std::string& name) const {
    return postgres() ? config_.url + "\n" + current_database_ : url(name);
}

Store Bench::fresh(const std::string& name) {
    if (sqlite()) {
        for (const char* suffix : {".db", ".db-wal", ".db-shm"})
            std::filesystem::remove(config_.dir + "/" + name + suffix);
    }
    if (postgres()) {
        // The previous workload's store is closed by now.
        drop_database(current_database_);
        current_database_ = fmt::format("factstr_bench_{}_{}_{}", getpid(), name, databases_++);
        return factstr::bootstrap(config_.url, current_database_);
    }
    return factstr::open(url(name));
}

const std::string& Bench::raw_database() {
    if (raw_database_.empty()) {
        raw_database_ = fmt::format("factstr_bench_{}_raw", getpid());
        PgConn server(config_.url, "");
        server.exec("CREATE DATABASE \"" + raw_database_ +
                    "\" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'");
    }
    return raw_database_;
}

void Bench::drop_database(std::string& name) {
    if (name.empty()) return;
    PgConn server(config_.url, "");
    server.exec("DROP DATABASE IF EXISTS \"" + name + "\" WITH (FORCE)");
    name.clear();
}

Store open_worker_store(const std::string& target) {
    const auto newline = target.find('\n');
    if (newline == std::string::npos) return factstr::open(target);
    return factstr::bootstrap(target.substr(0, newline), target.substr(newline + 1));
}

}  // namespace factstr::bench
