// Projector worker processes: killed with SIGKILL at random moments while facts keep coming,
// and two workers sharing projections on PostgreSQL with one of them killed.
#include <catch2/catch.hpp>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "../postgres/raw.hpp"
#include "../support/process.hpp"
#include "ledger.hpp"

using namespace factstr;
using namespace factstr::testing;
using namespace std::chrono_literals;

namespace {

// Appends deposits and withdrawals in small batches from a thread until stopped.
class Appender {
  public:
    explicit Appender(Store& store, unsigned seed) : store_(store) {
        thread_ = std::thread([this, seed] {
            std::mt19937 random(seed);
            while (!stop_.load()) {
                std::vector<NewEvent> batch;
                const int size = 1 + static_cast<int>(random() % 5);
                for (int i = 0; i < size; ++i)
                    batch.push_back({random() % 3 ? "deposited" : "withdrawn",
                                     R"({"accountId":"acc)" + std::to_string(random() % 20) +
                                         R"(","amount":)" + std::to_string(1 + random() % 100) +
                                         "}"});
                (void)store_.append(std::move(batch));
                std::this_thread::sleep_for(std::chrono::microseconds(random() % 1500));
            }
        });
    }
    ~Appender() { stop(); }
    void stop() {
        stop_.store(true);
        if (thread_.joinable()) thread_.join();
    }

  private:
    Store& store_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

std::unique_ptr<ChildProcess> start_worker(const std::string& url, const std::string& id,
                                           int lease_ms, int count) {
    auto worker = std::make_unique<ChildProcess>(std::vector<std::string>{
        FACTSTR_PROJECTION_WORKER_PATH, url, id, std::to_string(lease_ms), std::to_string(count)});
    std::string line;
    REQUIRE(worker->read_line(line));
    REQUIRE(line == "started");
    return worker;
}

// Waits until every projection is held by `owner` (any owner when empty) and has applied the
// whole log.
bool wait_all_current(Store& store, std::size_t count, const std::string& owner,
                      std::chrono::milliseconds timeout, bool only_owned = false) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        const SequenceNumber head = store.head();
        auto statuses = projections::status(store);
        bool current = statuses.size() == count;
        for (const auto& status : statuses)
            if ((!only_owned && status.checkpoint < head) || !status.owner ||
                (!owner.empty() && status.owner != owner))
                current = false;
        if (current) return true;
        std::this_thread::sleep_for(20ms);
    }
    return false;
}

void check_every_table_exact(Store& store, int count) {
    const auto expected = ledger_from_log(store);
    projections::Engine reader(store);
    for (int i = 0; i < count; ++i) {
        INFO("ledger_" << i);
        CHECK(ledger_from_table(reader.read("ledger_" + std::to_string(i))) == expected);
    }
}

void kill_at_random_moments(const std::string& url) {
    Store store = open(url);
    Appender appender(store, 99);
    std::mt19937 random(20261124);
    const int lease_ms = 300;
    for (int round = 0; round < 12; ++round) {
        auto worker = start_worker(url, "worker-" + std::to_string(round), lease_ms, 2);
        // Long enough for the dead worker's leases to run out and for some pages to commit;
        // the kill lands anywhere in a page's fold, write or commit.
        std::this_thread::sleep_for(std::chrono::milliseconds(lease_ms + 50 + random() % 500));
        worker->kill(SIGKILL);
        CHECK(worker->wait() == 128 + SIGKILL);
    }
    appender.stop();
    INFO("facts in the log: " << store.head());
    auto last = start_worker(url, "last", lease_ms, 2);
    REQUIRE(wait_all_current(store, 2, "last", 30s));
    last->kill(SIGTERM);
    CHECK(last->wait() == 0);
    check_every_table_exact(store, 2);
}

}  // namespace

TEST_CASE(
    "projector processes killed at random moments while facts keep coming leave every "
    "derived value exact (SQLite)",
    "[sqlite][crash]") {
    const auto directory = std::filesystem::temp_directory_path() /
                           ("factstr-projections-" + std::to_string(::getpid()));
    std::filesystem::remove_all(directory);
    std::filesystem::create_directories(directory);
    kill_at_random_moments("sqlite:" + (directory / "facts.db").string());
    std::filesystem::remove_all(directory);
}

TEST_CASE(
    "projector processes killed at random moments while facts keep coming leave every "
    "derived value exact (PostgreSQL)",
    "[postgres][crash]") {
    (void)require_postgres_server("projections_process_tests");
    const std::string database = fresh_database_name();
    (void)bootstrap(postgres_server_url(), database);
    kill_at_random_moments(url_of(database));
}

TEST_CASE(
    "two PostgreSQL workers share the projections, and one takes over when the other is "
    "killed, applying no fact twice",
    "[postgres][crash]") {
    (void)require_postgres_server("projections_process_tests");
    const std::string database = fresh_database_name();
    const std::string url = url_of(database);
    Store store = bootstrap(postgres_server_url(), database);
    const int lease_ms = 1000;
    Appender appender(store, 5);
    auto a = start_worker(url, "A", lease_ms, 4);
    auto b = start_worker(url, "B", lease_ms, 4);

    // Both make progress, on different projections.
    std::set<std::string> owners;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
        owners.clear();
        bool all_moving = true;
        for (const auto& status : projections::status(store)) {
            if (status.owner) owners.insert(*status.owner);
            if (status.checkpoint == 0) all_moving = false;
        }
        if (owners == std::set<std::string>{"A", "B"} && all_moving) break;
        std::this_thread::sleep_for(20ms);
    }
    REQUIRE(owners == std::set<std::string>{"A", "B"});
    std::map<std::string, std::string> held_by;
    for (const auto& status : projections::status(store))
        held_by[status.name] = status.owner.value_or("");
    CHECK(std::count_if(held_by.begin(), held_by.end(), [](auto& e) { return e.second == "A"; }) ==
          2);

    a->kill(SIGKILL);
    CHECK(a->wait() == 128 + SIGKILL);
    const auto killed_at = std::chrono::steady_clock::now();
    REQUIRE(wait_all_current(store, 4, "B", 20s, true));
    const auto takeover = std::chrono::steady_clock::now() - killed_at;
    INFO(
        "takeover after " << std::chrono::duration_cast<std::chrono::milliseconds>(takeover).count()
                          << " ms");
    // The lease runs out after 1 s; B looks every lease/3 and then catches up.
    CHECK(takeover < std::chrono::milliseconds(lease_ms * 3));

    appender.stop();
    REQUIRE(wait_all_current(store, 4, "B", 20s));
    b->kill(SIGTERM);
    CHECK(b->wait() == 0);
    check_every_table_exact(store, 4);
}
