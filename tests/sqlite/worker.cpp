// A child process for the SQLite multi-process and crash tests. Modes:
//   (PATH may end in URL options, e.g. facts.db?index_batch=16)
//   contend PATH N ID        N rounds of query + append_if on three shared accounts; prints
//                            "ok FIRST LAST ACCOUNT EXPECTED" or "conflict ACCOUNT EXPECTED ACTUAL"
//   tail PATH N              live stream_all; prints "ready", then one sequence number per
//                            line until N facts arrived
//   crash PATH HANDLED ACKED a durable stream whose handler records each handled batch end in
//                            HANDLED, while the main thread appends forever (single facts,
//                            batches, append_ifs) and records each acknowledged range in ACKED
#include <fcntl.h>
#include <unistd.h>

#include <factstr/factstr.hpp>

#include "../support/contend.hpp"

#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <random>
#include <string>

using namespace factstr;
using namespace factstr::testing;

namespace {

// Unbuffered line append: survives kill -9 of this process once write() returned.
void write_line(int fd, const std::string& line) {
    std::string text = line + "\n";
    if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) std::abort();
}

int contend(const std::string& path, int rounds, int id) {
    Store store = open("sqlite:" + path);
    std::mt19937 random(static_cast<unsigned>(id) * 7919u);
    for (int i = 0; i < rounds; ++i) {
        std::string account = "acc" + std::to_string(random() % 3);
        auto query = account_query(account);
        auto context = store.query(query);
        auto outcome = store.append_if(
            {{"deposited", R"({"account":")" + account + R"(","amount":1,"worker":)" +
                               std::to_string(id) + "}"}},
            query, context.current_context_version);
        report_outcome(outcome, account, context.current_context_version);
    }
    return 0;
}

int tail(const std::string& path, std::size_t expected) {
    Store store = open("sqlite:" + path);
    std::mutex mutex;
    std::condition_variable changed;
    std::size_t seen = 0;
    auto subscription = store.stream_all([&](const Batch& batch) {
        std::lock_guard lock(mutex);
        for (const auto& record : batch)
            std::cout << record.sequence_number << "\n";
        std::cout.flush();
        seen += batch.size();
        changed.notify_all();
    });
    std::cout << "ready" << std::endl;
    std::unique_lock lock(mutex);
    if (!changed.wait_for(lock, std::chrono::seconds(60), [&] { return seen >= expected; }))
        return 3;
    lock.unlock();
    subscription.unsubscribe();
    return 0;
}

int crash(const std::string& path, const std::string& handled_path, const std::string& acked_path) {
    int handled = ::open(handled_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int acked = ::open(acked_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (handled < 0 || acked < 0) return 4;
    Store store = open("sqlite:" + path);
    auto subscription = store.stream_all_durable({"crash-projector"}, [&](const Batch& batch) {
        // "Work" for the batch, then record that it was fully handled.
        write_line(handled, std::to_string(batch.back().sequence_number));
    });
    std::mt19937 random(static_cast<unsigned>(::getpid()));
    for (long i = 0;; ++i) {
        const int kind = static_cast<int>(random() % 3);
        std::vector<NewEvent> events;
        const int count = kind == 1 ? 1 + static_cast<int>(random() % 50) : 1;
        for (int e = 0; e < count; ++e)
            events.push_back({"tick", R"({"account":"c)" + std::to_string(random() % 5) +
                                          R"(","i":)" + std::to_string(i) + "}"});
        if (kind == 2) {
            auto query = account_query("c" + std::to_string(random() % 5));
            auto context = store.query(query);
            auto outcome =
                store.append_if(std::move(events), query, context.current_context_version);
            if (auto* r = outcome.append_result())
                write_line(acked, std::to_string(r->first_sequence_number) + " " +
                                      std::to_string(r->last_sequence_number));
        } else {
            auto r = store.append(std::move(events));
            write_line(acked, std::to_string(r.first_sequence_number) + " " +
                                  std::to_string(r.last_sequence_number));
        }
    }
}

}  // namespace

int main(int argc, char** argv) try {
    std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "contend" && argc == 5)
        return contend(argv[2], std::stoi(argv[3]), std::stoi(argv[4]));
    if (mode == "tail" && argc == 4) return tail(argv[2], std::stoul(argv[3]));
    if (mode == "crash" && argc == 5) return crash(argv[2], argv[3], argv[4]);
    std::cerr << "usage: worker contend PATH N ID | tail PATH N | crash PATH HANDLED ACKED\n";
    return 2;
} catch (const std::exception& e) {
    std::cerr << "worker: " << e.what() << "\n";
    return 1;
}
