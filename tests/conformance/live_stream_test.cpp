// Live streams (DESIGN.md §1 "Live streams", §4 asynchronous handlers).
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../support/helpers.hpp"
#include "../support/store_factory.hpp"

using namespace factstr;
using namespace factstr::testing;

namespace {

// Checks that the delivered batches are strictly increasing across and within batches.
bool strictly_increasing(const std::vector<Batch>& batches) {
    SequenceNumber last = 0;
    for (const Batch& b : batches)
        for (const EventRecord& r : b) {
            if (r.sequence_number <= last) return false;
            last = r.sequence_number;
        }
    return true;
}

// Holds the Completion of an asynchronous handler until the test decides to finish it.
struct HeldCompletions {
    std::mutex mutex;
    std::vector<std::optional<Completion>> held;
    std::vector<Batch> batches;

    std::size_t count() {
        std::lock_guard lock(mutex);
        return held.size();
    }
    void hold(const Batch& batch, Completion done) {
        std::lock_guard lock(mutex);
        batches.push_back(batch);
        held.emplace_back(std::move(done));
    }
    // Finishes completion `i` from another thread.
    void succeed_from_thread(std::size_t i) {
        std::optional<Completion> done;
        {
            std::lock_guard lock(mutex);
            done.emplace(std::move(*held.at(i)));
            held.at(i).reset();
        }
        std::thread([d = std::move(done)]() mutable { d->succeed(); }).join();
    }
    void fail_from_thread(std::size_t i, std::string reason) {
        std::optional<Completion> done;
        {
            std::lock_guard lock(mutex);
            done.emplace(std::move(*held.at(i)));
            held.at(i).reset();
        }
        std::thread([d = std::move(done), reason]() mutable { d->fail(reason); }).join();
    }
};

}  // namespace

TEST_CASE("a live stream sees only facts committed after registration", "[live]") {
    Store store = make_store();
    (void)store.append({event("before", numbered("i", 1)), event("before", numbered("i", 2))});
    (void)store.append({event("before", numbered("i", 3))});
    auto all = std::make_shared<BatchRecorder>();
    auto typed = std::make_shared<BatchRecorder>();
    Subscription s1 = store.stream_all(record_into(all));
    Subscription s2 = store.stream_to(query_of({types({"before", "after"})}), record_into(typed));
    CHECK(s1.active());
    settle();
    CHECK(all->batches().empty());
    CHECK(typed->batches().empty());

    (void)store.append({event("after", numbered("i", 4))});
    REQUIRE(all->wait_for_batches(1));
    REQUIRE(typed->wait_for_batches(1));
    settle();
    CHECK(all->all_sequence_numbers() == Seqs{4});
    CHECK(typed->all_sequence_numbers() == Seqs{4});
    s1.unsubscribe();
    s2.unsubscribe();
}

TEST_CASE("each committed append arrives as one batch with its facts in order", "[live]") {
    Store store = make_store();
    auto rec = std::make_shared<BatchRecorder>();
    Subscription sub = store.stream_all(record_into(rec));
    (void)store.append({event("a", numbered("i", 1))});
    (void)store.append(
        {event("b", numbered("i", 2)), event("c", numbered("i", 3)), event("d", numbered("i", 4))});
    (void)store.append({event("e", numbered("i", 5)), event("f", numbered("i", 6))});
    REQUIRE(rec->wait_for_batches(3));
    settle();
    const auto batches = rec->batches();
    CHECK(batch_sequence_numbers(batches) == Ranges{{1}, {2, 3, 4}, {5, 6}});
    // The delivered facts are the committed facts, field by field.
    const auto facts = all_facts(store);
    std::vector<EventRecord> delivered;
    for (const auto& b : batches)
        delivered.insert(delivered.end(), b.begin(), b.end());
    CHECK(delivered == facts);
    CHECK(sub.position() == 6);
}

TEST_CASE("stream_to delivers only the matching facts of a batch, and nothing when none match",
          "[live]") {
    Store store = make_store();
    auto by_type = std::make_shared<BatchRecorder>();
    auto by_payload = std::make_shared<BatchRecorder>();
    Subscription s1 = store.stream_to(query_of({types({"hit"})}), record_into(by_type));
    Subscription s2 =
        store.stream_to(query_of({predicates({R"({"k":1})"})}), record_into(by_payload));

    (void)store.append({event("hit", numbered("k", 2)), event("miss", numbered("k", 1)),
                        event("hit", numbered("k", 3))});                                    // 1-3
    (void)store.append({event("miss", numbered("k", 2)), event("miss", numbered("k", 3))});  // 4-5
    (void)store.append({event("miss", numbered("k", 4))});                                   // 6
    (void)store.append({event("hit", numbered("k", 1))});                                    // 7
    REQUIRE(by_type->wait_until(
        [](const auto& b) { return !b.empty() && b.back().back().sequence_number == 7; }));
    REQUIRE(by_payload->wait_until(
        [](const auto& b) { return !b.empty() && b.back().back().sequence_number == 7; }));
    settle();
    CHECK(batch_sequence_numbers(by_type->batches()) == Ranges{{1, 3}, {7}});
    CHECK(batch_sequence_numbers(by_payload->batches()) == Ranges{{2}, {7}});
    const auto first = by_type->batches().at(0);
    CHECK(first.at(0).payload == R"({"k":2})");
    CHECK(first.at(1).payload == R"({"k":3})");
    // No batch is ever empty.
    for (const auto& b : by_type->batches())
        CHECK_FALSE(b.empty());
    for (const auto& b : by_payload->batches())
        CHECK_FALSE(b.empty());
    s1.unsubscribe();
    s2.unsubscribe();
}

TEST_CASE("several streams see the same batches", "[live]") {
    Store store = make_store();
    std::vector<std::shared_ptr<BatchRecorder>> recs;
    std::vector<Subscription> subs;
    for (int i = 0; i < 3; ++i) {
        recs.push_back(std::make_shared<BatchRecorder>());
        subs.push_back(store.stream_all(record_into(recs.back())));
    }
    for (int i = 0; i < 10; ++i) {
        std::vector<NewEvent> batch;
        for (int j = 0; j <= i % 3; ++j)
            batch.push_back(event("t", numbered("i", i)));
        (void)store.append(std::move(batch));
    }
    for (auto& rec : recs)
        REQUIRE(rec->wait_for_batches(10));
    settle();
    const auto reference = batch_sequence_numbers(recs[0]->batches());
    CHECK(reference.size() == 10);
    CHECK(reference.back().back() == store.head());
    for (auto& rec : recs)
        CHECK(batch_sequence_numbers(rec->batches()) == reference);
}

TEST_CASE("unsubscribe stops one stream and the others continue", "[live]") {
    Store store = make_store();
    auto stopped = std::make_shared<BatchRecorder>();
    auto running = std::make_shared<BatchRecorder>();
    Subscription a = store.stream_all(record_into(stopped));
    Subscription b = store.stream_all(record_into(running));
    (void)store.append({event("one")});
    REQUIRE(stopped->wait_for_batches(1));
    REQUIRE(running->wait_for_batches(1));

    a.unsubscribe();
    CHECK_FALSE(a.active());
    CHECK(b.active());
    (void)store.append({event("two")});
    (void)store.append({event("three")});
    REQUIRE(running->wait_for_batches(3));
    settle();
    CHECK(batch_sequence_numbers(stopped->batches()) == Ranges{{1}});
    CHECK(batch_sequence_numbers(running->batches()) == Ranges{{1}, {2}, {3}});
    a.unsubscribe();  // a second unsubscribe is harmless
    b.unsubscribe();
    CHECK_FALSE(b.active());
}

TEST_CASE("a handler that throws keeps the append committed and later batches still arrive",
          "[live]") {
    Store store = make_store();
    auto thrower = std::make_shared<BatchRecorder>();
    auto other = std::make_shared<BatchRecorder>();
    Subscription s1 = store.stream_all([thrower](const Batch& batch) {
        thrower->record(batch);
        throw std::runtime_error("handler failed on purpose");
    });
    Subscription s2 = store.stream_all(record_into(other));

    AppendResult r1 = store.append({event("a")});
    CHECK(r1 == AppendResult{1, 1, 1});
    AppendResult r2 = store.append({event("b"), event("c")});
    CHECK(r2 == AppendResult{2, 3, 2});
    REQUIRE(thrower->wait_for_batches(2));
    REQUIRE(other->wait_for_batches(2));
    (void)store.append({event("d")});
    REQUIRE(thrower->wait_for_batches(3));
    REQUIRE(other->wait_for_batches(3));
    settle();
    CHECK(batch_sequence_numbers(thrower->batches()) == Ranges{{1}, {2, 3}, {4}});
    CHECK(batch_sequence_numbers(other->batches()) == Ranges{{1}, {2, 3}, {4}});
    CHECK(store.head() == 4);
    CHECK(all_facts(store).size() == 4);
    s1.unsubscribe();
    s2.unsubscribe();
}

TEST_CASE("a handler that returns false keeps the append committed and later batches still arrive",
          "[live]") {
    Store store = make_store();
    auto refuser = std::make_shared<BatchRecorder>();
    auto other = std::make_shared<BatchRecorder>();
    // The other stream registers first, so that it is not merely "before" the failing one.
    Subscription s2 = store.stream_to(query_of({types({"a", "b"})}), record_into(other));
    Subscription s1 = store.stream_all([refuser](const Batch& batch) {
        refuser->record(batch);
        return false;
    });
    for (int i = 0; i < 5; ++i)
        (void)store.append({event(i % 2 ? "a" : "b")});
    REQUIRE(refuser->wait_for_batches(5));
    REQUIRE(other->wait_for_batches(5));
    settle();
    CHECK(refuser->all_sequence_numbers() == range(1, 5));
    CHECK(other->all_sequence_numbers() == range(1, 5));
    CHECK(sequence_numbers(all_facts(store)) == range(1, 5));
    s1.unsubscribe();
    s2.unsubscribe();
}

TEST_CASE("a conflicting append_if delivers nothing", "[live]") {
    Store store = make_store();
    (void)store.append({event("a", numbered("k", 1))});  // 1, before registration
    auto all = std::make_shared<BatchRecorder>();
    auto filtered = std::make_shared<BatchRecorder>();
    Subscription s1 = store.stream_all(record_into(all));
    Subscription s2 =
        store.stream_to(query_of({predicates({R"({"k":1})"})}), record_into(filtered));

    AppendIfResult conflict = store.append_if({event("a", numbered("k", 1)), event("b")},
                                              query_of({types({"a"})}), std::nullopt);
    REQUIRE(conflict.conflict() != nullptr);
    AppendIfResult ok =
        store.append_if({event("a", numbered("k", 1))}, query_of({types({"a"})}), 1);
    REQUIRE(ok.committed());
    REQUIRE(all->wait_for_batches(1));
    REQUIRE(filtered->wait_for_batches(1));
    settle();
    CHECK(batch_sequence_numbers(all->batches()) == Ranges{{2}});
    CHECK(batch_sequence_numbers(filtered->batches()) == Ranges{{2}});
    s1.unsubscribe();
    s2.unsubscribe();
}

TEST_CASE("batches arrive in commit order across many appends from one thread", "[live]") {
    Store store = make_store();
    auto all = std::make_shared<BatchRecorder>();
    auto odd = std::make_shared<BatchRecorder>();
    Subscription s1 = store.stream_all(record_into(all));
    Subscription s2 = store.stream_to(query_of({types({"odd"})}), record_into(odd));
    Ranges expected_all, expected_odd;
    for (int i = 0; i < 500; ++i) {
        std::vector<NewEvent> batch;
        const int size = 1 + i % 3;
        for (int j = 0; j < size; ++j)
            batch.push_back(event(j % 2 ? "even" : "odd", numbered("i", i)));
        AppendResult r = store.append(std::move(batch));
        expected_all.push_back(range(r.first_sequence_number, r.last_sequence_number));
        Seqs o;
        for (SequenceNumber s = r.first_sequence_number; s <= r.last_sequence_number; s += 2)
            o.push_back(s);
        expected_odd.push_back(o);
    }
    REQUIRE(all->wait_for_batches(500));
    REQUIRE(odd->wait_for_batches(500));
    settle();
    CHECK(all->batches().size() == 500);
    CHECK(batch_sequence_numbers(all->batches()) == expected_all);
    CHECK(batch_sequence_numbers(odd->batches()) == expected_odd);
    CHECK(all->all_sequence_numbers() == range(1, store.head()));
    s1.unsubscribe();
    s2.unsubscribe();
}

TEST_CASE("streams see concurrent appends from several threads in commit order with no gap",
          "[live]") {
    Store store = make_store();
    auto all = std::make_shared<BatchRecorder>();
    auto odd_threads = std::make_shared<BatchRecorder>();
    Subscription s1 = store.stream_all(record_into(all));
    Subscription s2 =
        store.stream_to(query_of({predicates({R"({"odd":true})"})}), record_into(odd_threads));

    constexpr int kThreads = 4;
    constexpr int kAppends = 100;
    std::mutex ranges_mutex;
    std::vector<std::pair<SequenceNumber, SequenceNumber>> ranges;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kAppends; ++i) {
                std::vector<NewEvent> batch;
                for (int j = 0; j <= (i + t) % 3; ++j)
                    batch.push_back(event("t", std::string("{\"thread\":") + std::to_string(t) +
                                                   ",\"odd\":" + (t % 2 ? "true" : "false") + "}"));
                AppendResult r = store.append(std::move(batch));
                std::lock_guard lock(ranges_mutex);
                ranges.emplace_back(r.first_sequence_number, r.last_sequence_number);
            }
        });
    }
    for (auto& th : threads)
        th.join();
    const SequenceNumber head = store.head();
    REQUIRE(all->wait_until(
        [head](const auto& b) { return !b.empty() && b.back().back().sequence_number == head; }));
    settle();
    CHECK(all->all_sequence_numbers() == range(1, head));
    CHECK(all->batches().size() == std::size_t(kThreads * kAppends));
    // Every delivered batch is exactly one append's range.
    std::sort(ranges.begin(), ranges.end());
    std::vector<std::pair<SequenceNumber, SequenceNumber>> delivered;
    for (const auto& b : all->batches())
        delivered.emplace_back(b.front().sequence_number, b.back().sequence_number);
    CHECK(delivered == ranges);

    // The filtered stream: strictly increasing, and exactly the facts of odd threads.
    Seqs odd_expected;
    for (const auto& r : all_facts(store))
        if (r.payload.find("\"odd\":true") != std::string::npos)
            odd_expected.push_back(r.sequence_number);
    REQUIRE(odd_threads->wait_until([&](const auto& b) {
        return !b.empty() && b.back().back().sequence_number == odd_expected.back();
    }));
    settle();
    CHECK(strictly_increasing(odd_threads->batches()));
    CHECK(odd_threads->all_sequence_numbers() == odd_expected);
    s1.unsubscribe();
    s2.unsubscribe();
}

TEST_CASE("an asynchronous handler holds back the next batch until it completes", "[live]") {
    Store store = make_store();
    auto held = std::make_shared<HeldCompletions>();
    Subscription sub = store.stream_all(StreamHandler::async(
        [held](const Batch& batch, Completion done) { held->hold(batch, std::move(done)); }));
    (void)store.append({event("a")});
    REQUIRE(wait_for([&] { return held->count() == 1; }));
    (void)store.append({event("b"), event("c")});
    (void)store.append({event("d")});
    settle();
    CHECK(held->count() == 1);  // the first batch is still being handled

    held->succeed_from_thread(0);
    REQUIRE(wait_for([&] { return held->count() == 2; }));
    settle();
    CHECK(held->count() == 2);
    held->succeed_from_thread(1);
    REQUIRE(wait_for([&] { return held->count() == 3; }));
    held->succeed_from_thread(2);
    settle();
    std::lock_guard lock(held->mutex);
    CHECK(batch_sequence_numbers(held->batches) == Ranges{{1}, {2, 3}, {4}});
    sub.unsubscribe();
}

TEST_CASE("an asynchronous handler that fails does not stop later live batches", "[live]") {
    Store store = make_store();
    auto held = std::make_shared<HeldCompletions>();
    Subscription sub = store.stream_all(StreamHandler::async(
        [held](const Batch& batch, Completion done) { held->hold(batch, std::move(done)); }));
    (void)store.append({event("a")});
    REQUIRE(wait_for([&] { return held->count() == 1; }));
    (void)store.append({event("b")});
    held->fail_from_thread(0, "failed on purpose");
    REQUIRE(wait_for([&] { return held->count() == 2; }));
    held->succeed_from_thread(1);
    std::lock_guard lock(held->mutex);
    CHECK(batch_sequence_numbers(held->batches) == Ranges{{1}, {2}});
    CHECK(store.head() == 2);
    sub.unsubscribe();
}

TEST_CASE("a run handler that reports a failed batch still gets every later live batch", "[live]") {
    Store store = make_store();
    std::mutex mutex;
    std::vector<std::vector<CommittedBatch>> runs;
    std::vector<std::optional<Completion>> completions;
    Subscription sub = store.stream_all(
        StreamHandler::async_runs([&](const std::vector<CommittedBatch>& run, Completion done) {
            std::lock_guard lock(mutex);
            runs.push_back(run);
            completions.emplace_back(std::move(done));
        }));
    auto run_count = [&] {
        std::lock_guard lock(mutex);
        return runs.size();
    };
    (void)store.append({event("a")});
    REQUIRE(wait_for([&] { return run_count() == 1; }));
    // While the first run is out, three more batches are committed: one run of all three.
    (void)store.append({event("b")});
    (void)store.append({event("c"), event("d")});
    (void)store.append({event("e")});
    std::optional<Completion> first;
    {
        std::lock_guard lock(mutex);
        first.emplace(std::move(*completions[0]));
    }
    std::thread([&] { first->succeed(); }).join();
    REQUIRE(wait_for([&] { return run_count() == 2; }));
    std::optional<Completion> second;
    {
        std::lock_guard lock(mutex);
        CHECK(runs[1].size() == 3);
        second.emplace(std::move(*completions[1]));
    }
    // The run's first batch succeeded, its second failed: a live stream goes on after the
    // failed batch, so the third is delivered again in the next run.
    std::thread([&] { second->fail_after(2, 4, "failed on purpose"); }).join();
    REQUIRE(wait_for([&] { return run_count() == 3; }));
    {
        std::lock_guard lock(mutex);
        REQUIRE(runs[2].size() == 1);
        CHECK(runs[2][0].last_sequence_number == 5);
        completions[2]->succeed();
    }
    CHECK(sub.active());
    sub.unsubscribe();
}

TEST_CASE("no handler runs after the store is closed", "[live]") {
    std::atomic<int> running{0};
    std::atomic<bool> closed{false};
    std::atomic<int> after_close{0};
    auto rec = std::make_shared<BatchRecorder>();
    {
        Store store = make_store();
        Subscription sub = store.stream_all([&, rec](const Batch& batch) {
            ++running;
            if (closed) ++after_close;
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
            rec->record(batch);
            --running;
        });
        for (int i = 0; i < 50; ++i)
            (void)store.append({event("a")});
        REQUIRE(rec->wait_for_batches(1));
        store.close();
        closed = true;
        CHECK(running.load() == 0);
        CHECK_FALSE(sub.active());
        CHECK_THROWS_AS(store.append({event("late")}), StoreError);
    }
    settle();
    CHECK(after_close.load() == 0);
    CHECK(running.load() == 0);
}

TEST_CASE("stream_to with a malformed query is invalid input and registers nothing", "[live]") {
    Store store = make_store();
    auto rec = std::make_shared<BatchRecorder>();
    try {
        (void)store.stream_to(query_of({predicates({"{\"k\":"})}), record_into(rec));
        FAIL("expected InvalidInput");
    } catch (const InvalidInput& e) {
        CHECK(e.code() == ErrorCode::invalid_json);
    }
    (void)store.append({event("a", numbered("k", 1))});
    settle();
    CHECK(rec->batches().empty());
}
