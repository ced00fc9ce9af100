// The asynchronous append and append_if (Store::append_async / append_if_async): the same
// group commit as the blocking calls, outcomes through a callback, close() waits for them.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "../support/helpers.hpp"
#include "../support/store_factory.hpp"

using namespace factstr;
using namespace factstr::testing;

namespace {

struct Outcomes {
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<std::optional<AppendIfResult>> results;
    std::vector<std::exception_ptr> errors;
    std::size_t done = 0;

    explicit Outcomes(std::size_t n) : results(n), errors(n) {}
    Store::AppendDone callback(std::size_t i) {
        return [this, i](const AppendIfResult* result, std::exception_ptr error) {
            std::lock_guard lock(mutex);
            if (result) results[i] = *result;
            errors[i] = error;
            ++done;
            changed.notify_all();
        };
    }
    void wait(std::size_t n) {
        std::unique_lock lock(mutex);
        changed.wait(lock, [&] { return done >= n; });
    }
};

}  // namespace

TEST_CASE("asynchronous appends from a few threads get consecutive ranges without holes",
          "[append][async]") {
    Store store = make_store();
    constexpr std::size_t kThreads = 4, kEach = 50;
    Outcomes outcomes(kThreads * kEach);
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            for (std::size_t i = 0; i < kEach; ++i) {
                const std::size_t k = t * kEach + i;
                store.append_async({event("A", R"({"k":)" + std::to_string(k) + "}"),
                                    event("B", R"({"k":)" + std::to_string(k) + "}")},
                                   outcomes.callback(k));
            }
        });
    for (auto& thread : threads)
        thread.join();
    outcomes.wait(kThreads * kEach);
    std::vector<bool> taken(2 * kThreads * kEach + 1, false);
    for (std::size_t k = 0; k < kThreads * kEach; ++k) {
        REQUIRE_FALSE(outcomes.errors[k]);
        REQUIRE(outcomes.results[k]);
        const AppendResult* range = outcomes.results[k]->append_result();
        REQUIRE(range);
        CHECK(range->committed_count == 2);
        CHECK(range->last_sequence_number == range->first_sequence_number + 1);
        for (SequenceNumber n = range->first_sequence_number; n <= range->last_sequence_number;
             ++n) {
            CHECK_FALSE(taken[n]);
            taken[n] = true;
        }
    }
    CHECK(store.head() == 2 * kThreads * kEach);
    const QueryResult all = store.query(EventQuery{});
    CHECK(all.event_records.size() == 2 * kThreads * kEach);
}

TEST_CASE("asynchronous append_ifs on one context: exactly one per version commits",
          "[append_if][async]") {
    Store store = make_store();
    const EventQuery context = query_of({EventFilter{
        std::vector<std::string>{"Opened"}, std::vector<std::string>{R"({"account":"a"})"}}});
    constexpr std::size_t kTries = 8;
    Outcomes outcomes(kTries);
    for (std::size_t i = 0; i < kTries; ++i)
        store.append_if_async({event("Opened", R"({"account":"a"})")}, context, std::nullopt,
                              outcomes.callback(i));
    outcomes.wait(kTries);
    std::size_t committed = 0;
    for (std::size_t i = 0; i < kTries; ++i) {
        REQUIRE_FALSE(outcomes.errors[i]);
        REQUIRE(outcomes.results[i]);
        if (outcomes.results[i]->committed()) {
            ++committed;
        } else {
            CHECK(outcomes.results[i]->conflict()->expected_context_version == std::nullopt);
            CHECK(outcomes.results[i]->conflict()->actual_context_version.has_value());
        }
    }
    CHECK(committed == 1);
    CHECK(store.head() == 1);
}

TEST_CASE("an asynchronous append of invalid input throws at once and queues nothing",
          "[append][async]") {
    Store store = make_store();
    bool called = false;
    auto done = [&](const AppendIfResult*, std::exception_ptr) { called = true; };
    CHECK_THROWS_AS(store.append_async({}, done), InvalidInput);
    CHECK_THROWS_AS(store.append_async({event("A", "{nope")}, done), InvalidInput);
    store.close();
    CHECK_FALSE(called);
}

TEST_CASE("close waits for outstanding asynchronous appends, which stay committed",
          "[append][async]") {
    std::atomic<std::size_t> done{0};
    {
        Store store = make_store();
        for (int i = 0; i < 20; ++i)
            store.append_async({event("A", "{}")},
                               [&](const AppendIfResult* result, std::exception_ptr error) {
                                   if (result && !error) ++done;
                               });
        store.close();
        CHECK(done.load() == 20);
    }
    if (auto reopened = reopen_store()) CHECK(reopened->head() == 20);
}

TEST_CASE("query with a limit returns the first facts and the version of the whole log",
          "[query]") {
    Store store = make_store();
    for (int i = 0; i < 5; ++i)
        (void)store.append({event("A", "{}"), event("B", "{}")});
    const EventQuery a = query_of({types({"A"})});
    const QueryResult two = store.query(a, 2);
    REQUIRE(two.event_records.size() == 2);
    CHECK(two.event_records[0].sequence_number == 1);
    CHECK(two.event_records[1].sequence_number == 3);
    CHECK(two.last_returned_sequence_number == 3);
    CHECK(two.current_context_version == 9);
    const QueryResult none = store.query(a, 0);
    CHECK(none.event_records.empty());
    CHECK(none.current_context_version == 9);
    CHECK(store.query(a, 100).event_records.size() == 5);
}

TEST_CASE("read_page and for_each_batch walk whole batches and reach the head", "[query]") {
    Store store = make_store();
    for (int i = 0; i < 30; ++i)
        (void)store.append({event("A", "{}"), event("B", "{}"), event("A", "{}")});
    std::vector<SequenceNumber> seen;
    const SequenceNumber reached = store.for_each_batch(0, store.head(), query_of({types({"A"})}),
                                                        7, [&](const CommittedBatch& batch) {
                                                            CHECK(batch.records.size() == 2);
                                                            for (const auto& r : batch.records)
                                                                seen.push_back(r.sequence_number);
                                                            return true;
                                                        });
    CHECK(reached == 90);
    CHECK(seen.size() == 60);
    CHECK(std::is_sorted(seen.begin(), seen.end()));
    const BatchPage page = store.read_page(0, EventQuery{}, 4);
    REQUIRE(page.batches.size() == 2);  // 3 facts, then the batch that reaches 4 is whole
    CHECK(page.batches[1].records.size() == 3);
    CHECK(page.scanned_through == 6);
}
