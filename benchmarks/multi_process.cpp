// W4 with processes (SQLite, PostgreSQL): copies of factstr-bench re-executed as workers,
// each opening the same SQLite file / PostgreSQL database and running the command pattern.
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "bench.hpp"

namespace factstr::bench {

// `processes` workers (like W7 (c)) doing the W3 command pattern on the same 1,000
// overlapping accounts. All start at one instant on the shared monotonic clock (after every
// one has had time to open its store) and stop after the same duration; each prints its
// successes and conflicts.
void w4_processes(Bench& bench, unsigned processes) {
    const std::size_t keys = 1000;
    {
        Store store = bench.fresh("w4p");
        fill(store, 10000, keys);
        store.close();
    }
    const auto duration = std::chrono::milliseconds(bench.quick() ? 500 : 3000);
    const auto start = Clock::now() + std::chrono::milliseconds(1500);
    const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
    const std::string target_store = bench.worker_target("w4p");
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
                  start_text.c_str(), "--w4-ms", ms_text.c_str(), "--w4-seed", seed_text.c_str(),
                  static_cast<char*>(nullptr));
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
    Result r{
        "W4",
        fmt::format("{} processes, query+append_if, 1000 keys ({} ok, {} conflicts{})", processes,
                    ok, conflicts, late ? fmt::format(", {} started late", late) : ""),
        (ok + conflicts) / elapsed, "ops/s"};
    bench.add(r);
}

// The worker (--w4-worker): opens the store, waits until `start_ns` (steady clock), runs
// the command pattern on 1,000 accounts for `ms`, prints "ok conflicts late".
int w4_worker(const std::string& target, long long start_ns, int ms, unsigned seed) {
    try {
        Store store = open_worker_store(target);
        const Clock::time_point start{Clock::duration(start_ns)};
        const bool late = Clock::now() > start;
        std::this_thread::sleep_until(start);
        const auto end = start + std::chrono::milliseconds(ms);
        std::mt19937_64 random(seed);
        unsigned long long ok = 0, conflicts = 0;
        while (Clock::now() < end) {
            const std::size_t account = random() % 1000;
            const EventQuery query = account_context(account);
            auto context = store.query(query);
            auto outcome = store.append_if(
                {{"withdrawn", fmt::format(R"({{"accountId":"a{}","amount":1}})", account)}}, query,
                context.current_context_version);
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

}  // namespace factstr::bench
