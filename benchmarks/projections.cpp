// W7: projections (factstr::projections::Engine) — (a) catch-up from checkpoint 0 over a
// filled log, (b) live lag with the appends in the same process, (c) with the appends made by
// another process (factstr-bench re-executed as a writer: w7_writer).
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <thread>

#include "bench.hpp"
#include "pg_connection.hpp"
#include "raw_engines.hpp"

namespace factstr::bench {
namespace {

// W7's projection: per account, 3 computations over 3 event types.
projections::Projection w7_projection() {
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
std::size_t fill_accounts(Store& store, std::size_t size, std::size_t keys) {
    std::mt19937_64 random(7);
    std::vector<NewEvent> batch;
    std::size_t deposits = 0;
    for (std::size_t i = 0; i < size; ++i) {
        const auto pick = random() % 10;
        const char* type = pick < 6 ? "deposited" : pick < 9 ? "withdrawn" : "charged";
        if (pick < 6) ++deposits;
        batch.push_back({type, fmt::format(R"({{"accountId":"a{}","amount":{},"currency":"EUR"}})",
                                           random() % keys, 1 + random() % 1000)});
        if (batch.size() == 1000 || i + 1 == size) {
            (void)store.append(std::move(batch));
            batch.clear();
        }
    }
    return deposits;
}

// How many "live" deposits a reader sees in the derived data now. SQLite and PostgreSQL:
// another connection reads the account's row of the derived table (what any other
// process sees). Memory: Engine::read of a one-row projection counting the same facts
// (reading the 10k-row table would cost more than the lag being measured).
class LiveReader {
  public:
    LiveReader(Bench& bench, projections::Engine& engine) : engine_(engine) {
        static const char* sql = "SELECT deposits FROM w7_accounts WHERE account_id = 'live'";
        if (bench.sqlite()) {
            sqlite3_open_v2(bench.sqlite_path("w7").c_str(), &db_, SQLITE_OPEN_READONLY, nullptr);
            sqlite3_busy_timeout(db_, 1000);
            sqlite3_prepare_v2(db_, sql, -1, &select_, nullptr);
        } else if (bench.postgres()) {
            pg_ = std::make_unique<PgConn>(bench.config().url, bench.current_database());
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
    projections::Engine& engine_;
    sqlite3* db_ = nullptr;
    sqlite3_stmt* select_ = nullptr;
    std::unique_ptr<PgConn> pg_;
};

// Polls `reader` until `n` live facts are visible (or a timeout), noting when each one
// became visible (ns on the steady clock, shared by processes on Linux: CLOCK_MONOTONIC,
// so it compares with when each append returned).
std::vector<std::int64_t> poll_visibility(LiveReader& reader, std::size_t before, std::size_t n) {
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

Result lag_result(std::string detail, const std::vector<std::int64_t>& visible_at,
                  const std::vector<std::int64_t>& returned) {
    std::vector<double> latencies;
    for (std::size_t i = 0; i < visible_at.size(); ++i)
        latencies.push_back(std::max<double>(0, (visible_at[i] - returned[i]) / 1000.0));
    std::sort(latencies.begin(), latencies.end());
    Result r{"W7", std::move(detail), 0, "samples"};
    set_percentiles(r, latencies);
    return r;
}

}  // namespace

void w7_projections(Bench& bench) {
    const std::size_t size = bench.quick() ? (bench.postgres() ? 50000 : 100000) : 1000000;
    const std::size_t keys = 10000;
    Store store = bench.fresh("w7");
    const std::size_t deposits = fill_accounts(store, size, keys);
    const double target = bench.memory() ? 1000000 : bench.sqlite() ? 200000 : 100000;

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
    if (bench.sqlite()) catchup.raw_rate = raw_sqlite_upserts(bench.config(), size, keys);
    bench.add(catchup);

    // (b) live lag: single facts appended at a steady rate while the engine runs.
    if (bench.memory()) {
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
    const int rate = bench.quick() ? 500 : 2000;
    const std::size_t n = static_cast<std::size_t>(rate) * (bench.quick() ? 1 : 5);
    {
        LiveReader reader(bench, engine);
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
        bench.add(
            lag_result(fmt::format("live lag, append returned -> visible, in-process, {:.0f}/s",
                                   std::min<double>(achieved, rate)),
                       visible_at, returned));
    }

    // (c) the same with the appends from another process (SQLite, PostgreSQL).
    if (!bench.memory()) {
        LiveReader reader(bench, engine);
        const std::size_t before = reader.count();
        const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
        const std::string target_store = bench.worker_target("w7");
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
        bench.add(lag_result(fmt::format("live lag, append in another process -> visible, {:.0f}/s",
                                         std::min<double>(achieved, rate)),
                             visible_at, returned));
    }
    engine.stop();
}

// The writer (--w7-writer): appends `count` single facts at `rate` per second to the store,
// printing when each append returned (steady clock, ns) on stdout.
int w7_writer(const std::string& target, int rate, std::size_t count) {
    try {
        Store store = open_worker_store(target);
        const auto interval = std::chrono::nanoseconds(1000000000LL / std::max(1, rate));
        const auto t0 = Clock::now();
        for (std::size_t i = 0; i < count; ++i) {
            std::this_thread::sleep_until(t0 + i * interval);
            (void)store.append({{"deposited", R"({"accountId":"live","amount":1})"}});
            std::printf("%lld\n", static_cast<long long>(Clock::now().time_since_epoch().count()));
            std::fflush(stdout);
        }
        store.close();
    } catch (const std::exception& e) {
        fmt::print(stderr, "factstr-bench --w7-writer: {}\n", e.what());
        return 1;
    }
    return 0;
}

}  // namespace factstr::bench
