// factstr-bench: named workloads on a chosen backend, each compared in the same run with the
// raw engine underneath where one exists. Prints a table, or JSON with --json.
//
//   factstr-bench --backend memory|sqlite [--sync full|normal] [--quick] [--json]
//   factstr-bench --backend postgres [--url URL] [--quick] [--json]
//
// PostgreSQL (URL: a libpq connection string or postgres:// URL of a server; default
// $FACTSTR_TEST_POSTGRES_URL): every workload runs on a freshly bootstrapped database (dropped
// afterwards), and the raw figures are libpq on the same server, in the same run, into a
// table of the same shape (same columns, primary key, event-type index and jsonb GIN index):
// single-row INSERT transactions (W1, W3), one multi-row INSERT per transaction (W2),
// single-row INSERT transactions from 8 connections at once (W5, the group-commit
// comparison), and a full scan of the facts table with a cursor (W6 replay).
#include <libpq-fe.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <factstr/factstr.hpp>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

using namespace factstr;
using Clock = std::chrono::steady_clock;

namespace {

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

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// Runs `op` `ops` times: the seconds it took in all, and each run's latency (µs), sorted.
struct Timed {
    double seconds = 0;
    std::vector<double> latencies_us;
    void percentiles(Result& r) const {
        r.p50_us = latencies_us[latencies_us.size() / 2];
        r.p99_us = latencies_us[latencies_us.size() * 99 / 100];
    }
};

template <class Op>
Timed time_each(std::size_t ops, Op&& op) {
    Timed timed;
    timed.latencies_us.reserve(ops);
    const auto start = Clock::now();
    for (std::size_t i = 0; i < ops; ++i) {
        const auto t0 = Clock::now();
        op();
        timed.latencies_us.push_back(
            std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    timed.seconds = seconds_since(start);
    std::sort(timed.latencies_us.begin(), timed.latencies_us.end());
    return timed;
}

std::string payload(std::mt19937_64& random, std::size_t keys) {
    return fmt::format(
        R"({{"accountId":"a{}","amount":{},"currency":"EUR","note":"monthly transfer for invoice {} of the customer account"}})",
        random() % keys, random() % 1000, random() % 100000);
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

// A libpq connection to the bench's server, optionally to another database on it.
class PgConn {
  public:
    PgConn(const std::string& server_url, const std::string& database) {
        const char* keywords[] = {"dbname", database.empty() ? nullptr : "dbname", nullptr};
        const char* values[] = {server_url.c_str(), database.empty() ? nullptr : database.c_str(),
                                nullptr};
        conn_ = PQconnectdbParams(keywords, values, 1);
        if (PQstatus(conn_) != CONNECTION_OK) {
            std::string message = PQerrorMessage(conn_);
            PQfinish(conn_);
            throw std::runtime_error("raw libpq connection failed: " + message);
        }
    }
    ~PgConn() {
        if (conn_) PQfinish(conn_);
    }
    PgConn(const PgConn&) = delete;
    PgConn& operator=(const PgConn&) = delete;
    PgConn(PgConn&& other) noexcept : conn_(std::exchange(other.conn_, nullptr)) {}
    PGconn* get() const { return conn_; }

    void exec(const std::string& sql) { check(PQexec(conn_, sql.c_str()), sql); }
    std::string value(const std::string& sql) {
        PGresult* r = PQexec(conn_, sql.c_str());
        check_keep(r, sql);
        std::string out = PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
        PQclear(r);
        return out;
    }
    void prepare(const char* name, const std::string& sql, int params) {
        check(PQprepare(conn_, name, sql.c_str(), params, nullptr), sql);
    }
    void exec_prepared(const char* name, const std::vector<const char*>& values) {
        check(PQexecPrepared(conn_, name, static_cast<int>(values.size()), values.data(), nullptr,
                             nullptr, 0),
              name);
    }
    void check_keep(PGresult* r, const std::string& what) {
        const auto status = PQresultStatus(r);
        if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return;
        std::string message = PQresultErrorMessage(r);
        PQclear(r);
        throw std::runtime_error("raw libpq: " + what.substr(0, 80) + ": " + message);
    }

  private:
    void check(PGresult* r, const std::string& what) {
        check_keep(r, what);
        PQclear(r);
    }
    PGconn* conn_ = nullptr;
};

class Bench {
  public:
    explicit Bench(Config config) : config_(std::move(config)) {}
    ~Bench() {
        if (config_.backend != "postgres") return;
        try {
            drop_database(current_database_);
            drop_database(raw_database_);
        } catch (const std::exception&) {
            // Best effort: the databases are named factstr_bench_<pid>_….
        }
    }

    bool postgres() const { return config_.backend == "postgres"; }
    bool want(const char* workload) const {
        return config_.only.empty() ||
               std::find(config_.only.begin(), config_.only.end(), workload) != config_.only.end();
    }

    std::string url(const std::string& name) const {
        if (config_.backend == "memory") return "memory:";
        return "sqlite:" + config_.dir + "/" + name + ".db?sync=" + config_.sync;
    }

    Store fresh(const std::string& name) {
        if (config_.backend == "sqlite") {
            for (const char* suffix : {".db", ".db-wal", ".db-shm"})
                std::filesystem::remove(config_.dir + "/" + name + suffix);
        }
        if (postgres()) {
            // The previous workload's store is closed by now.
            drop_database(current_database_);
            current_database_ = fmt::format("factstr_bench_{}_{}_{}", getpid(), name, databases_++);
            return Store(bootstrap_postgres(config_.url, current_database_));
        }
        return open(url(name));
    }

    void drop_database(std::string& name) {
        if (name.empty()) return;
        PgConn server(config_.url, "");
        server.exec("DROP DATABASE IF EXISTS \"" + name + "\" WITH (FORCE)");
        name.clear();
    }

    // W1: single-fact appends, one at a time.
    void w1() {
        const std::size_t n = config_.backend == "memory" ? (config_.quick ? 300000 : 2000000)
                              : postgres()                ? (config_.quick ? 1000 : 10000)
                              : config_.sync == "full"    ? (config_.quick ? 300 : 2000)
                                                          : (config_.quick ? 5000 : 50000);
        Store store = fresh("w1");
        std::mt19937_64 random(1);
        std::vector<std::string> payloads;
        for (std::size_t i = 0; i < std::min<std::size_t>(n, 10000); ++i)
            payloads.push_back(payload(random, 1000));
        auto start = Clock::now();
        for (std::size_t i = 0; i < n; ++i)
            (void)store.append({NewEvent{"deposited", payloads[i % payloads.size()]}});
        Result r{"W1", "single-fact appends", n / seconds_since(start)};
        if (config_.backend == "sqlite") r.raw_rate = raw_sqlite_inserts(n, 1);
        if (postgres()) r.raw_rate = raw_single_ = raw_pg_inserts(n, 1);
        results_.push_back(r);
    }

    // W2: batched appends.
    void w2(std::size_t batch) {
        const std::size_t total = config_.backend == "memory" ? (config_.quick ? 500000 : 2000000)
                                  : postgres()                ? (config_.quick ? 20000 : 200000)
                                  : config_.sync == "full"    ? (config_.quick ? 20000 : 200000)
                                                              : (config_.quick ? 50000 : 500000);
        const std::size_t batches = std::max<std::size_t>(1, total / batch);
        Store store = fresh("w2");
        std::mt19937_64 random(2);
        std::vector<NewEvent> proto;
        for (std::size_t i = 0; i < batch; ++i)
            proto.push_back({"deposited", payload(random, 1000)});
        auto start = Clock::now();
        for (std::size_t b = 0; b < batches; ++b)
            (void)store.append(proto);
        Result r{"W2", fmt::format("batches of {}", batch), batches * batch / seconds_since(start)};
        if (config_.backend == "sqlite") r.raw_rate = raw_sqlite_inserts(batches * batch, batch);
        if (postgres()) r.raw_rate = raw_pg_inserts(batches * batch, batch);
        results_.push_back(r);
    }

    // Fills a log with `size` deposits over `keys` accounts, in batches of 1000.
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

    // W3's context: one type and one account. The command appends a fact of another type, so
    // the context keeps its size however many commands run and the figure shows how the cost
    // grows with the log, not with the context.
    static EventQuery deposits_context(std::size_t account) {
        return EventQuery{
            {{EventFilter{{{"deposited"}}, {{fmt::format(R"({{"accountId":"a{}"}})", account)}}}}},
            std::nullopt};
    }

    // W4's context includes the commands' own facts, so concurrent writers conflict.
    static EventQuery account_context(std::size_t account) {
        return EventQuery{{{EventFilter{{{"deposited", "withdrawn"}},
                                        {{fmt::format(R"({{"accountId":"a{}"}})", account)}}}}},
                          std::nullopt};
    }

    // W3: query a narrow context, then append_if with its version, at several log sizes.
    // W5 runs on the same log first (it is filled once for both).
    void w3(std::size_t size, double* single_insert_raw) {
        if (!want("W3") && !want("W5")) return;
        const std::size_t keys = std::clamp<std::size_t>(size / 10, 1000, 100000);
        Store store = fresh("w3");
        fill(store, size, keys);
        if (want("W5")) w5(store, size, keys);
        if (!want("W3")) return;
        const std::size_t ops = config_.backend == "memory" ? (config_.quick ? 50000 : 200000)
                                : postgres()                ? (config_.quick ? 300 : 2000)
                                : config_.sync == "full"    ? (config_.quick ? 200 : 1000)
                                                            : (config_.quick ? 2000 : 20000);
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
        if (single_insert_raw) r.raw_rate = *single_insert_raw;
        if (conflicts) r.detail += fmt::format(" ({} conflicts!)", conflicts);
        results_.push_back(r);
    }

    // W5: a narrow query (type + a payload predicate: one account's ~10 deposits) and a broad
    // one (by type: every fact of the log, which holds only deposits) on W3's log. The broad
    // query is compared with the raw engine reading the same rows in the same order into
    // memory (SQLite: the store's own file through the C API, its type index; PostgreSQL:
    // one SELECT over libpq).
    void w5(Store& store, std::size_t size, std::size_t keys) {
        const std::size_t ops = config_.backend == "memory" ? (config_.quick ? 20000 : 100000)
                                : postgres()                ? (config_.quick ? 300 : 3000)
                                                            : (config_.quick ? 2000 : 20000);
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
        results_.push_back(narrow);

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
            latencies.push_back(
                std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        } while (runs < 10 && seconds_since(start) < 1.0);
        Result broad{"W5", fmt::format("broad query (by type, all {} facts), {} runs", size, runs),
                     facts / seconds_since(start)};
        std::sort(latencies.begin(), latencies.end());
        broad.p50_us = latencies[latencies.size() / 2];
        if (config_.backend == "sqlite") broad.raw_rate = raw_sqlite_type_read(size);
        if (postgres()) broad.raw_rate = raw_pg_type_read(size);
        results_.push_back(broad);
    }

    // W4: concurrent writers doing W3 on overlapping keys.
    void w4(unsigned threads) {
        Store store = fresh("w4");
        const std::size_t keys = 1000;
        fill(store, 10000, keys);
        const auto duration = std::chrono::milliseconds(config_.quick ? 500 : 3000);
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
                        {{"withdrawn",
                          fmt::format(R"({{"accountId":"a{}","amount":1}})", account)}},
                        query, context.current_context_version);
                    (outcome ? ok : conflicts).fetch_add(1);
                }
            });
        }
        for (auto& w : workers)
            w.join();
        const double elapsed = seconds_since(start);
        Result r{"W4",
                 fmt::format("{} threads, query+append_if, 1000 keys ({} ok, {} conflicts)",
                             threads, ok.load(), conflicts.load()),
                 (ok + conflicts) / elapsed, "ops/s"};
        results_.push_back(r);
    }

    // W4 with processes (SQLite, PostgreSQL): `processes` copies of factstr-bench, re-executed
    // as workers like W7 (c), each opening the same SQLite file / PostgreSQL database and doing
    // the W3 command pattern on the same 1,000 overlapping accounts. All start at one instant
    // on the shared monotonic clock (after every one has had time to open its store) and stop
    // after the same duration; each prints its successes and conflicts.
    void w4_processes(unsigned processes) {
        const std::size_t keys = 1000;
        {
            Store store = fresh("w4p");
            fill(store, 10000, keys);
            store.close();
        }
        const auto duration = std::chrono::milliseconds(config_.quick ? 500 : 3000);
        const auto start = Clock::now() + std::chrono::milliseconds(1500);
        const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
        const std::string target_store =
            postgres() ? config_.url + "\n" + current_database_ : url("w4p");
        const std::string start_text =
            std::to_string(static_cast<long long>(start.time_since_epoch().count()));
        const std::string ms_text = std::to_string(duration.count());
        std::vector<std::pair<pid_t, int>> children;
        for (unsigned p = 0; p < processes; ++p) {
            int fds[2];
            if (pipe(fds) != 0) throw std::runtime_error("W4: pipe failed");
            const pid_t child = fork();
            if (child == 0) {
                dup2(fds[1], STDOUT_FILENO);
                close(fds[0]);
                close(fds[1]);
                const std::string seed_text = std::to_string(300 + p);
                execl(exe.c_str(), exe.c_str(), "--w4-worker", target_store.c_str(), "--w4-start",
                      start_text.c_str(), "--w4-ms", ms_text.c_str(), "--w4-seed",
                      seed_text.c_str(), static_cast<char*>(nullptr));
                _exit(127);
            }
            close(fds[1]);
            children.emplace_back(child, fds[0]);
        }
        std::size_t ok = 0, conflicts = 0, late = 0;
        std::string failure;
        for (auto [child, fd] : children) {
            FILE* in = fdopen(fd, "r");
            unsigned long long child_ok = 0, child_conflicts = 0, child_late = 0;
            const bool parsed =
                std::fscanf(in, "%llu %llu %llu", &child_ok, &child_conflicts, &child_late) == 3;
            std::fclose(in);
            int status = 0;
            waitpid(child, &status, 0);
            if (!parsed || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                failure = fmt::format("W4: worker process failed (status {})", status);
            ok += child_ok;
            conflicts += child_conflicts;
            late += child_late;
        }
        if (!failure.empty()) throw std::runtime_error(failure);
        const double elapsed = std::chrono::duration<double>(duration).count();
        Result r{"W4",
                 fmt::format("{} processes, query+append_if, 1000 keys ({} ok, {} conflicts{})",
                             processes, ok, conflicts,
                             late ? fmt::format(", {} started late", late) : ""),
                 (ok + conflicts) / elapsed, "ops/s"};
        results_.push_back(r);
    }

    // W9 (beyond the issue's list): concurrent single-fact appends from one store — what
    // group commit buys. `raw_single` is the raw one-row-per-transaction rate of one writer
    // (SQLite); PostgreSQL compares with 8 raw connections.
    void w9(unsigned threads, double raw_single) {
        Store store = fresh("w9");
        const auto duration = std::chrono::milliseconds(config_.quick ? 1000 : 3000);
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
                             postgres() ? "8 connections" : "1 writer, 1 row per transaction"),
                 appended / seconds_since(start)};
        if (postgres()) r.raw_rate = raw_pg_concurrent_inserts(8, duration);
        if (raw_single > 0) r.raw_rate = raw_single;
        results_.push_back(r);
    }

    // W6: durable catch-up over a filled log, then live delivery latency.
    void w6() {
        const std::size_t size = config_.quick ? (postgres() ? 100000 : 200000) : 1000000;
        Store store = fresh("w6");
        fill(store, size, 10000);
        std::atomic<std::size_t> seen{0};
        auto start = Clock::now();
        auto subscription = store.stream_all_durable({"bench"}, [&](const Batch& batch) {
            seen.fetch_add(batch.size(), std::memory_order_relaxed);
        });
        Result replay{"W6", fmt::format("durable replay of {} facts", size),
                      seen / seconds_since(start)};
        subscription.unsubscribe();
        if (postgres()) replay.raw_rate = raw_pg_scan(current_database_);
        results_.push_back(replay);

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
        const int samples = config_.quick ? 200 : 2000;
        for (int i = 0; i < samples; ++i) {
            auto t0 = Clock::now();
            (void)store.append({{"ping", "{}"}});
            std::unique_lock lock(mutex);
            arrived.wait(lock, [&] { return got; });
            got = false;
            latencies.push_back(std::chrono::duration<double, std::micro>(delivered - t0).count());
        }
        live.unsubscribe();
        std::sort(latencies.begin(), latencies.end());
        Result r{"W6", "live delivery latency (append -> handler)", samples / 1.0, "samples"};
        r.p50_us = latencies[latencies.size() / 2];
        r.p99_us = latencies[latencies.size() * 99 / 100];
        r.rate = 0;
        results_.push_back(r);
    }

    // W8: bytes per fact held by the memory store (log and indexes).
    void w8(std::size_t size) {
        const long rss_before = current_rss_kb();
        Store store = open("memory:");
        fill(store, size, 100000);
        const double bytes = static_cast<double>(memory_backend_bytes(store.backend())) / size;
        const double rss = (current_rss_kb() - rss_before) * 1024.0 / size;
        Result r{"W8",
                 fmt::format("memory store bytes/fact at {} facts (RSS growth {:.0f} B/fact)", size,
                             rss),
                 0, "B/fact"};
        r.value = bytes;
        results_.push_back(r);
    }

    // ---- W7: projections ------------------------------------------------------------------

    // W7's projection: per account, 3 computations over 3 event types.
    static projections::Projection w7_projection() {
        using namespace projections;
        Projection p("w7_accounts");
        p.key_by("accountId");
        p.count("deposits", on({"deposited"}));
        p.weighted_sum("balance",
                       {WeightedTerm{on({"deposited"}), 1, std::string("amount"), 1},
                        WeightedTerm{on({"withdrawn"}), -1, std::string("amount"), 1},
                        WeightedTerm{on({"charged"}), -1, std::string("amount"), 1}},
                       ColumnType::integer);
        p.average("mean_deposit", on({"deposited"}), "amount");
        return p;
    }

    // Appends `size` facts of 3 types (60% deposited, 30% withdrawn, 10% charged) over
    // `keys` accounts in batches of 1000; returns the number of deposits.
    static std::size_t fill_accounts(Store& store, std::size_t size, std::size_t keys) {
        std::mt19937_64 random(7);
        std::vector<NewEvent> batch;
        std::size_t deposits = 0;
        for (std::size_t i = 0; i < size; ++i) {
            const auto pick = random() % 10;
            const char* type = pick < 6 ? "deposited" : pick < 9 ? "withdrawn" : "charged";
            if (pick < 6) ++deposits;
            batch.push_back(
                {type, fmt::format(R"({{"accountId":"a{}","amount":{},"currency":"EUR"}})",
                                   random() % keys, 1 + random() % 1000)});
            if (batch.size() == 1000 || i + 1 == size) {
                (void)store.append(std::move(batch));
                batch.clear();
            }
        }
        return deposits;
    }

    // A fresh SQLite file for a raw yardstick, with the store's journal and sync settings.
    sqlite3* open_raw_sqlite(const std::string& name) {
        const std::string path = config_.dir + "/" + name + ".db";
        for (const char* suffix : {"", "-wal", "-shm"})
            std::filesystem::remove(path + suffix);
        sqlite3* db = nullptr;
        sqlite3_open(path.c_str(), &db);
        sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
        sqlite3_exec(
            db, config_.sync == "full" ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
            nullptr, nullptr, nullptr);
        return db;
    }

    // Runs `statement` `rows` times in transactions of `per_transaction`, `bind(i)` binding
    // row i first; returns rows per second.
    template <class Bind>
    static double run_raw_sqlite(sqlite3* db, sqlite3_stmt* statement, std::size_t rows,
                                 std::size_t per_transaction, Bind&& bind) {
        auto start = Clock::now();
        for (std::size_t i = 0; i < rows;) {
            sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
            for (std::size_t j = 0; j < per_transaction && i < rows; ++j, ++i) {
                bind(i);
                sqlite3_step(statement);
                sqlite3_reset(statement);
            }
            sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
        }
        const double rate = rows / seconds_since(start);
        sqlite3_finalize(statement);
        sqlite3_close(db);
        return rate;
    }

    // The raw engine for the catch-up: one prepared SQLite upsert per fact into a table of
    // the derived table's shape, 16384 per transaction (what a hand-written projector that
    // does not aggregate a page first would do), same journal and synchronous settings.
    double raw_sqlite_upserts(std::size_t rows, std::size_t keys) {
        sqlite3* db = open_raw_sqlite("raw_upserts");
        sqlite3_exec(db,
                     "CREATE TABLE accounts (account_id TEXT PRIMARY KEY, deposits INTEGER, "
                     "balance INTEGER, mean_deposit REAL, mean_deposit_sum REAL, "
                     "mean_deposit_count INTEGER)",
                     nullptr, nullptr, nullptr);
        sqlite3_stmt* upsert = nullptr;
        sqlite3_prepare_v2(
            db,
            "INSERT INTO accounts VALUES (?1, ?2, ?3, ?4, ?4, ?2) ON CONFLICT (account_id) DO "
            "UPDATE SET deposits = deposits + excluded.deposits, balance = balance + "
            "excluded.balance, mean_deposit_sum = mean_deposit_sum + excluded.mean_deposit_sum, "
            "mean_deposit_count = mean_deposit_count + excluded.mean_deposit_count, "
            "mean_deposit = (mean_deposit_sum + excluded.mean_deposit_sum) / "
            "NULLIF(mean_deposit_count + excluded.mean_deposit_count, 0)",
            -1, &upsert, nullptr);
        std::mt19937_64 random(7);
        std::vector<std::string> names;
        for (std::size_t k = 0; k < keys; ++k)
            names.push_back(fmt::format("a{}", k));
        return run_raw_sqlite(db, upsert, rows, 16384, [&](std::size_t) {
            const auto pick = random() % 10;
            const auto& key = names[random() % keys];
            const std::int64_t amount = 1 + static_cast<std::int64_t>(random() % 1000);
            sqlite3_bind_text(upsert, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
            sqlite3_bind_int64(upsert, 2, pick < 6 ? 1 : 0);
            sqlite3_bind_int64(upsert, 3, pick < 6 ? amount : -amount);
            if (pick < 6)
                sqlite3_bind_double(upsert, 4, static_cast<double>(amount));
            else
                sqlite3_bind_null(upsert, 4);
        });
    }

    // How many "live" deposits a reader sees in the derived data now. SQLite and PostgreSQL:
    // another connection reads the account's row of the derived table (what any other
    // process sees). Memory: Engine::read of a one-row projection counting the same facts
    // (reading the 10k-row table would cost more than the lag being measured).
    class LiveReader {
      public:
        LiveReader(Bench& bench, projections::Engine& engine) : bench_(bench), engine_(engine) {
            static const char* sql = "SELECT deposits FROM w7_accounts WHERE account_id = 'live'";
            if (bench.config_.backend == "sqlite") {
                sqlite3_open_v2(bench.sqlite_path("w7").c_str(), &db_, SQLITE_OPEN_READONLY,
                                nullptr);
                sqlite3_busy_timeout(db_, 1000);
                sqlite3_prepare_v2(db_, sql, -1, &select_, nullptr);
            } else if (bench.postgres()) {
                pg_ = std::make_unique<PgConn>(bench.config_.url, bench.current_database_);
                pg_->prepare("live", sql, 0);
            }
        }
        ~LiveReader() {
            if (select_) sqlite3_finalize(select_);
            if (db_) sqlite3_close(db_);
        }
        std::size_t count() {
            if (select_) {
                std::size_t n = 0;
                if (sqlite3_step(select_) == SQLITE_ROW)
                    n = static_cast<std::size_t>(sqlite3_column_int64(select_, 0));
                sqlite3_reset(select_);
                return n;
            }
            if (pg_) {
                PGresult* r = PQexecPrepared(pg_->get(), "live", 0, nullptr, nullptr, nullptr, 0);
                pg_->check_keep(r, "live");
                const std::size_t n =
                    PQntuples(r) > 0 ? std::strtoull(PQgetvalue(r, 0, 0), nullptr, 10) : 0;
                PQclear(r);
                return n;
            }
            const auto table = engine_.read("w7_live");
            if (table.rows.empty()) return 0;
            const auto& cell = table.rows.front()[table.column("deposits")];
            return static_cast<std::size_t>(std::get<std::int64_t>(cell));
        }

      private:
        Bench& bench_;
        projections::Engine& engine_;
        sqlite3* db_ = nullptr;
        sqlite3_stmt* select_ = nullptr;
        std::unique_ptr<PgConn> pg_;
    };

    std::string sqlite_path(const std::string& name) const {
        return config_.dir + "/" + name + ".db";
    }

    // Polls `reader` until `n` live facts are visible (or a timeout), noting when each one
    // became visible (ns on the steady clock, shared by processes on Linux: CLOCK_MONOTONIC,
    // so it compares with when each append returned).
    static std::vector<std::int64_t> poll_visibility(LiveReader& reader, std::size_t before,
                                                     std::size_t n) {
        std::vector<std::int64_t> visible_at(n, 0);
        std::size_t seen = 0;
        Clock::time_point progress = Clock::now();
        while (seen < n) {
            const std::size_t count = std::min(reader.count() - before, n);
            const std::int64_t now = Clock::now().time_since_epoch().count();
            if (count > seen) progress = Clock::now();
            for (; seen < count; ++seen)
                visible_at[seen] = now;
            if (Clock::now() - progress > std::chrono::seconds(30))
                throw std::runtime_error(
                    fmt::format("W7: live facts not visible after 30 s ({} of {})", seen, n));
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        return visible_at;
    }

    static Result lag_result(std::string detail, const std::vector<std::int64_t>& visible_at,
                             const std::vector<std::int64_t>& returned) {
        std::vector<double> latencies;
        for (std::size_t i = 0; i < visible_at.size(); ++i)
            latencies.push_back(std::max<double>(0, (visible_at[i] - returned[i]) / 1000.0));
        std::sort(latencies.begin(), latencies.end());
        Result r{"W7", std::move(detail), 0, "samples"};
        r.p50_us = latencies[latencies.size() / 2];
        r.p99_us = latencies[latencies.size() * 99 / 100];
        return r;
    }

    void w7() {
        const std::size_t size = config_.quick ? (postgres() ? 50000 : 100000) : 1000000;
        const std::size_t keys = 10000;
        Store store = fresh("w7");
        const std::size_t deposits = fill_accounts(store, size, keys);
        const double target = config_.backend == "memory"   ? 1000000
                              : config_.backend == "sqlite" ? 200000
                                                            : 100000;

        // (a) catch-up from checkpoint 0.
        projections::Engine engine(store);
        engine.add(w7_projection());
        auto start = Clock::now();
        engine.start();
        if (!engine.wait_caught_up(std::chrono::minutes(30)))
            throw std::runtime_error("W7: the projection did not catch up");
        const double seconds = seconds_since(start);
        for (const auto& s : engine.status())
            if (s.error) throw std::runtime_error("W7: " + *s.error);
        {
            const auto table = engine.read("w7_accounts");
            std::size_t counted = 0;
            for (const auto& row : table.rows)
                counted +=
                    static_cast<std::size_t>(std::get<std::int64_t>(row[table.column("deposits")]));
            if (counted != deposits || table.rows.size() > keys)
                throw std::runtime_error(
                    fmt::format("W7: wrong derived data: {} deposits in {} rows, expected {} in {}",
                                counted, table.rows.size(), deposits, keys));
        }
        Result catchup{"W7",
                       fmt::format("projection catch-up, {} facts, 10k keys, 3 computations "
                                   "(target {}k/s)",
                                   size, target / 1000),
                       size / seconds};
        if (config_.backend == "sqlite") catchup.raw_rate = raw_sqlite_upserts(size, keys);
        results_.push_back(catchup);

        // (b) live lag: single facts appended at a steady rate while the engine runs.
        if (config_.backend == "memory") {
            projections::Projection live("w7_live");
            live.count("deposits", projections::on({"deposited"}, R"({"accountId":"live"})"));
            engine.add(live);
            // A projection added to a started engine is claimed at its next lease round
            // (up to lease/3 later), and wait_caught_up does not wait for it: restart.
            engine.stop();
            engine.start();
            if (!engine.wait_caught_up(std::chrono::minutes(5)))
                throw std::runtime_error("W7: w7_live did not catch up");
        }
        const int rate = config_.quick ? 500 : 2000;
        const std::size_t n = static_cast<std::size_t>(rate) * (config_.quick ? 1 : 5);
        {
            LiveReader reader(*this, engine);
            const std::size_t before = reader.count();
            std::vector<std::int64_t> returned(n, 0);
            const auto interval = std::chrono::nanoseconds(1000000000LL / rate);
            const auto t0 = Clock::now();
            std::thread writer([&] {
                for (std::size_t i = 0; i < n; ++i) {
                    std::this_thread::sleep_until(t0 + i * interval);
                    (void)store.append({{"deposited", R"({"accountId":"live","amount":1})"}});
                    returned[i] = Clock::now().time_since_epoch().count();
                }
            });
            std::vector<std::int64_t> visible_at;
            try {
                visible_at = poll_visibility(reader, before, n);
            } catch (...) {
                writer.join();
                throw;
            }
            writer.join();
            const double achieved = n / seconds_since(t0);
            results_.push_back(
                lag_result(fmt::format("live lag, append returned -> visible, in-process, {:.0f}/s",
                                       std::min<double>(achieved, rate)),
                           visible_at, returned));
        }

        // (c) the same with the appends from another process (SQLite, PostgreSQL).
        if (config_.backend != "memory") {
            LiveReader reader(*this, engine);
            const std::size_t before = reader.count();
            const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
            const std::string target_store =
                postgres() ? config_.url + "\n" + current_database_ : url("w7");
            int fds[2];
            if (pipe(fds) != 0) throw std::runtime_error("W7: pipe failed");
            const pid_t child = fork();
            if (child == 0) {
                dup2(fds[1], STDOUT_FILENO);
                close(fds[0]);
                close(fds[1]);
                const std::string rate_text = std::to_string(rate), n_text = std::to_string(n);
                execl(exe.c_str(), exe.c_str(), "--w7-writer", target_store.c_str(), "--w7-rate",
                      rate_text.c_str(), "--w7-count", n_text.c_str(), static_cast<char*>(nullptr));
                _exit(127);
            }
            close(fds[1]);
            std::vector<std::int64_t> returned(n, 0);
            std::thread pipe_reader([&] {
                FILE* in = fdopen(fds[0], "r");
                long long t = 0;
                for (std::size_t i = 0; i < n && std::fscanf(in, "%lld", &t) == 1; ++i)
                    returned[i] = t;
                std::fclose(in);
            });
            std::vector<std::int64_t> visible_at;
            std::string failure;
            const auto t0 = Clock::now();
            try {
                visible_at = poll_visibility(reader, before, n);
            } catch (const std::exception& e) {
                failure = e.what();
                kill(child, SIGKILL);
            }
            const double achieved = n / seconds_since(t0);
            int status = 0;
            waitpid(child, &status, 0);
            pipe_reader.join();  // the writer printed its last time before it exited
            if (!failure.empty() || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                throw std::runtime_error(
                    fmt::format("W7: cross-process writer failed ({}): {}", status, failure));
            results_.push_back(
                lag_result(fmt::format("live lag, append in another process -> visible, {:.0f}/s",
                                       std::min<double>(achieved, rate)),
                           visible_at, returned));
        }
        engine.stop();
    }

    // The raw engine: prepared one-row inserts in transactions of `per_transaction` rows,
    // same journal and synchronous settings as the store.
    double raw_sqlite_inserts(std::size_t rows, std::size_t per_transaction) {
        sqlite3* db = open_raw_sqlite("raw");
        sqlite3_exec(
            db,
            "CREATE TABLE facts (sequence_number INTEGER PRIMARY KEY, occurred_at INTEGER, "
            "event_type TEXT, payload TEXT)",
            nullptr, nullptr, nullptr);
        sqlite3_stmt* insert = nullptr;
        sqlite3_prepare_v2(db, "INSERT INTO facts VALUES (?1, ?2, ?3, ?4)", -1, &insert, nullptr);
        std::mt19937_64 random(1);
        const std::string body = payload(random, 1000);
        return run_raw_sqlite(db, insert, rows, per_transaction, [&](std::size_t i) {
            sqlite3_bind_int64(insert, 1, static_cast<sqlite3_int64>(i + 1));
            sqlite3_bind_int64(insert, 2, 1);
            sqlite3_bind_text(insert, 3, "deposited", -1, SQLITE_STATIC);
            sqlite3_bind_text(insert, 4, body.data(), static_cast<int>(body.size()), SQLITE_STATIC);
        });
    }

    // ---- raw libpq on the same server -----------------------------------------------------

    // A table of the factstr facts table's shape (without the gap-free numbering), empty.
    PgConn raw_connection(bool recreate) {
        if (raw_database_.empty()) {
            raw_database_ = fmt::format("factstr_bench_{}_raw", getpid());
            PgConn server(config_.url, "");
            server.exec("CREATE DATABASE \"" + raw_database_ +
                        "\" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'");
        }
        PgConn raw(config_.url, raw_database_);
        if (recreate)
            raw.exec(
                "DROP TABLE IF EXISTS raw_facts;"
                " CREATE TABLE raw_facts (sequence_number bigint PRIMARY KEY, occurred_at bigint "
                "NOT NULL,"
                " event_type text NOT NULL, payload text NOT NULL, batch_last bigint NOT NULL);"
                " CREATE INDEX raw_facts_by_type ON raw_facts (event_type, sequence_number);"
                " CREATE INDEX raw_facts_by_payload ON raw_facts USING gin ((payload::jsonb) "
                "jsonb_path_ops);"
                " CHECKPOINT");
        return raw;
    }

    static std::string insert_sql(std::size_t rows) {
        std::string sql = "INSERT INTO raw_facts VALUES ";
        for (std::size_t i = 0; i < rows; ++i)
            sql += fmt::format("{}(${},${},${},${},${})", i ? "," : "", 5 * i + 1, 5 * i + 2,
                               5 * i + 3, 5 * i + 4, 5 * i + 5);
        return sql;
    }

    // `rows` rows in INSERT statements of `per_statement` rows, each its own transaction.
    double raw_pg_inserts(std::size_t rows, std::size_t per_statement) {
        PgConn raw = raw_connection(true);
        raw.prepare("insert", insert_sql(per_statement), static_cast<int>(5 * per_statement));
        std::mt19937_64 random(1);
        std::vector<std::string> payloads;
        for (std::size_t i = 0; i < std::min<std::size_t>(rows, 10000); ++i)
            payloads.push_back(payload(random, 1000));
        std::vector<std::string> text(5 * per_statement);
        std::vector<const char*> values(5 * per_statement);
        const std::string occurred = std::to_string(1700000000000000LL);
        auto start = Clock::now();
        for (std::size_t i = 0; i < rows;) {
            const std::size_t last = i + per_statement;
            for (std::size_t j = 0; j < per_statement; ++j, ++i) {
                text[5 * j] = std::to_string(i + 1);
                text[5 * j + 1] = occurred;
                text[5 * j + 2] = "deposited";
                text[5 * j + 3] = payloads[i % payloads.size()];
                text[5 * j + 4] = std::to_string(last);
                for (std::size_t k = 0; k < 5; ++k)
                    values[5 * j + k] = text[5 * j + k].c_str();
            }
            raw.exec_prepared("insert", values);
        }
        return rows / seconds_since(start);
    }

    // Single-row INSERT transactions from `connections` connections at once.
    double raw_pg_concurrent_inserts(unsigned connections, std::chrono::milliseconds duration) {
        { PgConn raw = raw_connection(true); }
        std::atomic<std::int64_t> next{0};
        std::atomic<std::size_t> inserted{0};
        std::vector<std::thread> workers;
        std::exception_ptr failure;
        std::mutex failure_mutex;
        auto start = Clock::now();
        for (unsigned c = 0; c < connections; ++c) {
            workers.emplace_back([&, c] {
                try {
                    PgConn raw = raw_connection(false);
                    raw.prepare("insert", insert_sql(1), 5);
                    std::mt19937_64 random(300 + c);
                    const std::string body = payload(random, 1000);
                    while (Clock::now() - start < duration) {
                        const std::string seq = std::to_string(++next);
                        raw.exec_prepared("insert", {seq.c_str(), "1700000000000000", "deposited",
                                                     body.c_str(), seq.c_str()});
                        inserted.fetch_add(1, std::memory_order_relaxed);
                    }
                } catch (...) {
                    std::lock_guard lock(failure_mutex);
                    failure = std::current_exception();
                }
            });
        }
        for (auto& w : workers)
            w.join();
        if (failure) std::rethrow_exception(failure);
        return inserted / seconds_since(start);
    }

    // Every row of a factstr database's facts table, in order, through a cursor.
    // The raw engines reading W5's broad query: every fact of type 'deposited', in order,
    // copied into memory (sequence number, time, type, payload), repeated like W5 does.
    // Facts per second.
    double raw_sqlite_type_read(std::size_t size) {
        sqlite3* db = nullptr;
        const std::string path = config_.dir + "/w3.db";
        if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK)
            throw std::runtime_error("raw SQLite: cannot open " + path);
        sqlite3_stmt* statement = nullptr;
        sqlite3_prepare_v2(db,
                           "SELECT f.sequence_number, f.occurred_at, t.name, f.payload"
                           " FROM facts f JOIN event_types t ON t.id = f.type_id"
                           " WHERE f.type_id = (SELECT id FROM event_types WHERE name = ?)"
                           " ORDER BY f.sequence_number",
                           -1, &statement, nullptr);
        std::size_t facts = 0, runs = 0;
        auto start = Clock::now();
        do {
            std::vector<EventRecord> records;
            sqlite3_bind_text(statement, 1, "deposited", -1, SQLITE_STATIC);
            while (sqlite3_step(statement) == SQLITE_ROW) {
                auto text = [&](int column) {
                    return std::string(
                        reinterpret_cast<const char*>(sqlite3_column_text(statement, column)),
                        static_cast<std::size_t>(sqlite3_column_bytes(statement, column)));
                };
                records.push_back(EventRecord{
                    static_cast<SequenceNumber>(sqlite3_column_int64(statement, 0)),
                    Timestamp(std::chrono::microseconds(sqlite3_column_int64(statement, 1))),
                    text(2), text(3)});
            }
            sqlite3_reset(statement);
            if (records.size() != size) throw std::runtime_error("raw SQLite: wrong row count");
            facts += records.size();
            ++runs;
        } while (runs < 10 && seconds_since(start) < 1.0);
        const double rate = facts / seconds_since(start);
        sqlite3_finalize(statement);
        sqlite3_close(db);
        return rate;
    }

    double raw_pg_type_read(std::size_t size) {
        PgConn raw(config_.url, current_database_);
        raw.prepare("by_type",
                    "SELECT sequence_number, occurred_at, event_type, payload FROM facts"
                    " WHERE event_type = $1 ORDER BY sequence_number",
                    1);
        std::size_t facts = 0, runs = 0;
        auto start = Clock::now();
        do {
            const char* type = "deposited";
            PGresult* r = PQexecPrepared(raw.get(), "by_type", 1, &type, nullptr, nullptr, 0);
            raw.check_keep(r, "by_type");
            std::vector<EventRecord> records;
            const int n = PQntuples(r);
            records.reserve(static_cast<std::size_t>(n));
            for (int i = 0; i < n; ++i)
                records.push_back(EventRecord{
                    static_cast<SequenceNumber>(std::strtoull(PQgetvalue(r, i, 0), nullptr, 10)),
                    Timestamp(
                        std::chrono::microseconds(std::strtoll(PQgetvalue(r, i, 1), nullptr, 10))),
                    std::string(PQgetvalue(r, i, 2),
                                static_cast<std::size_t>(PQgetlength(r, i, 2))),
                    std::string(PQgetvalue(r, i, 3),
                                static_cast<std::size_t>(PQgetlength(r, i, 3)))});
            PQclear(r);
            if (records.size() != size) throw std::runtime_error("raw libpq: wrong row count");
            facts += records.size();
            ++runs;
        } while (runs < 10 && seconds_since(start) < 1.0);
        return facts / seconds_since(start);
    }

    double raw_pg_scan(const std::string& database) {
        PgConn raw(config_.url, database);
        raw.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        raw.exec(
            "DECLARE everything NO SCROLL CURSOR FOR SELECT sequence_number, occurred_at,"
            " event_type, payload, batch_last FROM facts ORDER BY sequence_number");
        std::size_t rows = 0, bytes = 0;
        long long last = 0;
        auto start = Clock::now();
        for (;;) {
            PGresult* r = PQexec(raw.get(), "FETCH 10000 FROM everything");
            raw.check_keep(r, "FETCH");
            const int n = PQntuples(r);
            for (int i = 0; i < n; ++i) {
                last = std::strtoll(PQgetvalue(r, i, 0), nullptr, 10);
                bytes += static_cast<std::size_t>(PQgetlength(r, i, 2) + PQgetlength(r, i, 3));
            }
            PQclear(r);
            rows += static_cast<std::size_t>(n);
            if (n == 0) break;
        }
        const double rate = rows / seconds_since(start);
        raw.exec("COMMIT");
        if (rows == 0 || bytes == 0 || last != static_cast<long long>(rows))
            throw std::runtime_error("raw scan: unexpected rows");
        return rate;
    }

    void run_postgres() {
        {
            PgConn server(config_.url, "");
            server_version_ = server.value("SHOW server_version");
        }
        if (want("W1") || want("W3")) w1();
        if (want("W2")) {
            w2(100);
            w2(10000);
        }
        std::vector<std::size_t> sizes = {10000, 100000, 1000000};
        if (config_.quick) sizes = {10000, 100000};
        for (std::size_t size : sizes)
            w3(size, &raw_single_);
        if (want("W4")) {
            for (unsigned threads : {1u, 4u, 16u})
                w4(threads);
            for (unsigned processes : {4u, 16u})
                w4_processes(processes);
        }
        if (want("W9")) w9(16, 0);
        if (want("W6")) w6();
        if (want("W7")) w7();
    }

    void run() {
        if (postgres()) {
            run_postgres();
            return;
        }
        if (want("W1")) w1();
        if (want("W2")) {
            w2(100);
            w2(10000);
        }
        double raw_single = config_.backend == "sqlite" && (want("W3") || want("W9"))
                                ? raw_sqlite_inserts(config_.sync == "full" ? 1000 : 20000, 1)
                                : 0;
        std::vector<std::size_t> sizes = {10000, 100000, 1000000};
        if (config_.quick) sizes = {10000, 100000};
        if (config_.backend == "memory" && !config_.quick) sizes.push_back(10000000);
        for (std::size_t size : sizes)
            w3(size, config_.backend == "sqlite" ? &raw_single : nullptr);
        if (want("W4")) {
            for (unsigned threads : {1u, 4u, 16u})
                w4(threads);
            if (config_.backend == "sqlite")
                for (unsigned processes : {4u, 16u})
                    w4_processes(processes);
        }
        if (want("W9")) w9(16, config_.backend == "sqlite" ? raw_single : 0);
        if (want("W6")) w6();
        if (want("W7")) w7();
        if (config_.backend == "memory" && want("W8")) {
            w8(1000000);
            if (!config_.quick) w8(10000000);
        }
    }

    std::string json() const {
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

    void print() const {
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
            fmt::print("backend {} (sync {}), {} cores, SQLite {}, peak RSS {} MiB\n",
                       config_.backend, config_.sync, std::thread::hardware_concurrency(),
                       sqlite3_libversion(), peak_rss_kb() / 1024);
        fmt::print("{:<4} {:<62} {:>14} {:>9} {:>9} {:>12} {:>7}\n", "", "workload", "rate",
                   "p50 µs", "p99 µs", "raw rate", "ratio");
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

  private:
    Config config_;
    std::vector<Result> results_;
    // postgres
    std::string current_database_, raw_database_, server_version_;
    int databases_ = 0;
    double raw_single_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
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
    std::string w7_writer;
    int w7_rate = 0;
    std::size_t w7_count = 0;
    app.add_option("--w7-writer", w7_writer)->group("");
    app.add_option("--w7-rate", w7_rate)->group("");
    app.add_option("--w7-count", w7_count)->group("");
    // W4's worker process (internal): opens STORE, waits until --w4-start (steady clock, ns),
    // runs the command pattern on 1,000 accounts for --w4-ms, prints "ok conflicts late".
    std::string w4_worker;
    long long w4_start = 0;
    int w4_ms = 0;
    unsigned w4_seed = 0;
    app.add_option("--w4-worker", w4_worker)->group("");
    app.add_option("--w4-start", w4_start)->group("");
    app.add_option("--w4-ms", w4_ms)->group("");
    app.add_option("--w4-seed", w4_seed)->group("");
    CLI11_PARSE(app, argc, argv);
    if (!w4_worker.empty()) {
        try {
            const auto newline = w4_worker.find('\n');
            Store store = newline == std::string::npos
                              ? open(w4_worker)
                              : Store(bootstrap_postgres(w4_worker.substr(0, newline),
                                                         w4_worker.substr(newline + 1)));
            const Clock::time_point start{Clock::duration(w4_start)};
            const bool late = Clock::now() > start;
            std::this_thread::sleep_until(start);
            const auto end = start + std::chrono::milliseconds(w4_ms);
            std::mt19937_64 random(w4_seed);
            unsigned long long ok = 0, conflicts = 0;
            while (Clock::now() < end) {
                const std::size_t account = random() % 1000;
                const EventQuery query{
                    {{EventFilter{{{"deposited", "withdrawn"}},
                                  {{fmt::format(R"({{"accountId":"a{}"}})", account)}}}}},
                    std::nullopt};
                auto context = store.query(query);
                auto outcome = store.append_if(
                    {{"withdrawn", fmt::format(R"({{"accountId":"a{}","amount":1}})", account)}},
                    query, context.current_context_version);
                ++(outcome ? ok : conflicts);
            }
            store.close();
            std::printf("%llu %llu %d\n", ok, conflicts, late ? 1 : 0);
        } catch (const std::exception& e) {
            fmt::print(stderr, "factstr-bench --w4-worker: {}\n", e.what());
            return 1;
        }
        return 0;
    }
    if (!w7_writer.empty()) {
        try {
            const auto newline = w7_writer.find('\n');
            Store store = newline == std::string::npos
                              ? open(w7_writer)
                              : Store(bootstrap_postgres(w7_writer.substr(0, newline),
                                                         w7_writer.substr(newline + 1)));
            const auto interval = std::chrono::nanoseconds(1000000000LL / std::max(1, w7_rate));
            const auto t0 = Clock::now();
            for (std::size_t i = 0; i < w7_count; ++i) {
                std::this_thread::sleep_until(t0 + i * interval);
                (void)store.append({{"deposited", R"({"accountId":"live","amount":1})"}});
                std::printf("%lld\n",
                            static_cast<long long>(Clock::now().time_since_epoch().count()));
                std::fflush(stdout);
            }
            store.close();
        } catch (const std::exception& e) {
            fmt::print(stderr, "factstr-bench --w7-writer: {}\n", e.what());
            return 1;
        }
        return 0;
    }
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
