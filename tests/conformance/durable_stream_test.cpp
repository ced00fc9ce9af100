// Durable streams (DESIGN.md §1 "Durable streams", §4 replay before registration returns and
// asynchronous handlers).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../support/helpers.hpp"
#include "../support/store_factory.hpp"

using namespace factstr;
using namespace factstr::testing;

namespace {

DurableStream named(std::string name) {
    return DurableStream{std::move(name)};
}

// A handler that records each batch and fails (throws) on the batch containing `fail_at`.
StreamHandler throwing_at(std::shared_ptr<BatchRecorder> rec, SequenceNumber fail_at) {
    return [rec, fail_at](const Batch& batch) {
        rec->record(batch);
        for (const auto& r : batch)
            if (r.sequence_number == fail_at) throw std::runtime_error("failed on purpose");
    };
}

// A handler that records each batch and returns false on the batch containing `fail_at`.
StreamHandler refusing_at(std::shared_ptr<BatchRecorder> rec, SequenceNumber fail_at) {
    return [rec, fail_at](const Batch& batch) {
        rec->record(batch);
        for (const auto& r : batch)
            if (r.sequence_number == fail_at) return false;
        return true;
    };
}

// An asynchronous handler that records each batch and reports from another thread, after a
// short delay: failure for the batch containing `fail_at`, success otherwise.
struct DelayedAsync {
    std::mutex mutex;
    std::vector<std::thread> threads;
    std::atomic<int> completed{0};
    std::shared_ptr<BatchRecorder> rec = std::make_shared<BatchRecorder>();

    ~DelayedAsync() { join(); }
    void join() {
        std::vector<std::thread> mine;
        {
            std::lock_guard lock(mutex);
            mine.swap(threads);
        }
        for (auto& t : mine)
            t.join();
    }
};

StreamHandler delayed_async(std::shared_ptr<DelayedAsync> state, SequenceNumber fail_at = 0) {
    return StreamHandler::async([state, fail_at](const Batch& batch, Completion done) {
        state->rec->record(batch);
        bool fail = false;
        for (const auto& r : batch)
            if (r.sequence_number == fail_at) fail = true;
        std::lock_guard lock(state->mutex);
        state->threads.emplace_back([state, fail, d = std::move(done)]() mutable {
            std::this_thread::sleep_for(std::chrono::milliseconds(15));
            ++state->completed;
            if (fail)
                d.fail("failed on purpose");
            else
                d.succeed();
        });
    });
}

// A run handler (StreamHandler::async_runs) that handles each run on another thread, batch
// by batch in order, recording each: it reports fail_after at the batch containing `fail_at`,
// and the first run with more than one batch is cut short after its first batch when
// `cut_first_run` (succeed_through, as when the handler's owner unsubscribes mid-run).
StreamHandler run_handler(std::shared_ptr<DelayedAsync> state, SequenceNumber fail_at = 0,
                          bool cut_first_run = false) {
    auto cut = std::make_shared<std::atomic<bool>>(cut_first_run);
    return StreamHandler::async_runs(
        [state, fail_at, cut](const std::vector<CommittedBatch>& run, Completion done) {
            std::lock_guard lock(state->mutex);
            state->threads.emplace_back([state, fail_at, cut, run, d = std::move(done)]() mutable {
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
                ++state->completed;
                SequenceNumber handled = 0;
                for (const CommittedBatch& batch : run) {
                    if (handled != 0 && cut->exchange(false)) {
                        d.succeed_through(handled);
                        return;
                    }
                    state->rec->record(batch.records);
                    for (const auto& r : batch.records)
                        if (r.sequence_number == fail_at) {
                            d.fail_after(handled, batch.last_sequence_number, "failed on purpose");
                            return;
                        }
                    handled = batch.last_sequence_number;
                }
                d.succeed();
            });
        });
}

// Holds the Completion of an asynchronous handler until the test finishes it.
struct Held {
    std::mutex mutex;
    std::vector<std::optional<Completion>> held;
    std::size_t count() {
        std::lock_guard lock(mutex);
        return held.size();
    }
    void finish(std::size_t i, bool success) {
        std::optional<Completion> done;
        {
            std::lock_guard lock(mutex);
            done.emplace(std::move(*held.at(i)));
            held.at(i).reset();
        }
        std::thread([d = std::move(done), success]() mutable {
            if (success)
                d->succeed();
            else
                d->fail("failed on purpose");
        }).join();
    }
};

void expect_stream_error(const std::function<void()>& register_it, ErrorCode code) {
    try {
        register_it();
        FAIL("expected StreamError " << to_string(code));
    } catch (const StreamError& e) {
        CHECK(e.code() == code);
    }
}

// Appends batches of the given sizes; returns their ranges.
Ranges append_batches(Store& store, const std::vector<int>& sizes, const std::string& type = "t") {
    Ranges out;
    for (int size : sizes) {
        std::vector<NewEvent> batch;
        for (int i = 0; i < size; ++i)
            batch.push_back(event(type, numbered("i", i)));
        AppendResult r = store.append(std::move(batch));
        out.push_back(range(r.first_sequence_number, r.last_sequence_number));
    }
    return out;
}

}  // namespace

TEST_CASE(
    "a durable stream replays the batches after its cursor, batch by batch with their original "
    "boundaries",
    "[durable]") {
    Store store = make_store();
    (void)append_batches(store, {1, 2, 3});  // [1] [2,3] [4,5,6]
    auto rec = std::make_shared<BatchRecorder>();
    Subscription sub = store.stream_all_durable(named("reader"), record_into(rec));
    // Registration returned after the replay was handled: no waiting needed.
    CHECK(batch_sequence_numbers(rec->batches()) == Ranges{{1}, {2, 3}, {4, 5, 6}});
    CHECK(rec->batches() ==
          std::vector<Batch>{{all_facts(store)[0]},
                             {all_facts(store)[1], all_facts(store)[2]},
                             {all_facts(store)[3], all_facts(store)[4], all_facts(store)[5]}});
    CHECK(cursor_position(store, "reader") == 6);
    CHECK(sub.position() == 6);

    // Then it continues live.
    (void)append_batches(store, {2});  // [7,8]
    REQUIRE(rec->wait_for_batches(4));
    REQUIRE(wait_for([&] { return cursor_position(store, "reader") == 8; }));
    sub.unsubscribe();

    // A later registration replays strictly after the stored cursor.
    (void)append_batches(store, {1, 2});  // [9] [10,11]
    auto again = std::make_shared<BatchRecorder>();
    Subscription sub2 = store.stream_all_durable(named("reader"), record_into(again));
    CHECK(batch_sequence_numbers(again->batches()) == Ranges{{9}, {10, 11}});
    CHECK(cursor_position(store, "reader") == 11);
    settle();
    CHECK(batch_sequence_numbers(rec->batches()) == Ranges{{1}, {2, 3}, {4, 5, 6}, {7, 8}});
    sub2.unsubscribe();
}

TEST_CASE("durable registration returns only after the replay was handled", "[durable]") {
    Store store = make_store();
    (void)append_batches(store, {1, 1, 2, 1, 3, 1});
    auto rec = std::make_shared<BatchRecorder>();
    Subscription sub = store.stream_all_durable(named("slow"), [rec](const Batch& batch) {
        std::this_thread::sleep_for(std::chrono::milliseconds(15));
        rec->record(batch);
    });
    CHECK(rec->batches().size() == 6);
    CHECK(rec->all_sequence_numbers() == range(1, 9));
    CHECK(cursor_position(store, "slow") == 9);
    sub.unsubscribe();

    SECTION("also with an asynchronous handler that completes later on another thread") {
        auto state = std::make_shared<DelayedAsync>();
        Subscription a = store.stream_all_durable(named("async"), delayed_async(state));
        CHECK(state->completed.load() == 6);
        CHECK(state->rec->all_sequence_numbers() == range(1, 9));
        CHECK(cursor_position(store, "async") == 9);
        a.unsubscribe();
        state->join();
    }
    SECTION("also for a filtered stream") {
        (void)store.append({event("u", "{}")});  // 10
        auto filtered = std::make_shared<BatchRecorder>();
        Subscription f = store.stream_to_durable(
            named("filtered"), query_of({types({"u"})}), [filtered](const Batch& batch) {
                std::this_thread::sleep_for(std::chrono::milliseconds(15));
                filtered->record(batch);
            });
        CHECK(batch_sequence_numbers(filtered->batches()) == Ranges{{10}});
        f.unsubscribe();
    }
}

TEST_CASE("the hand-over from replay to live has no gap and no duplicate while others append",
          "[durable]") {
    for (int round = 0; round < 4; ++round) {
        INFO("round " << round);
        Store store = make_store();
        Ranges ranges = append_batches(store, std::vector<int>(150, 2));
        std::mutex ranges_mutex;
        std::atomic<int> appended{0};
        std::atomic<bool> registered{false};
        // Appends before, during and after the registrations.
        std::thread appender([&] {
            int after_registration = 0;
            for (int i = 0; after_registration < 60; ++i) {
                if (registered) ++after_registration;
                Ranges r = append_batches(store, {1 + i % 3}, i % 2 ? "odd" : "even");
                {
                    std::lock_guard lock(ranges_mutex);
                    ranges.push_back(r[0]);
                }
                ++appended;
                if (i % 8 == 0) std::this_thread::yield();
            }
        });
        while (appended < 10)
            std::this_thread::yield();
        auto all = std::make_shared<BatchRecorder>();
        auto odd = std::make_shared<BatchRecorder>();
        Subscription s1 = store.stream_all_durable(named("all"), record_into(all));
        Subscription s2 =
            store.stream_to_durable(named("odd"), query_of({types({"odd"})}), record_into(odd));
        registered = true;
        appender.join();
        const SequenceNumber head = store.head();
        REQUIRE(all->wait_until([head](const auto& b) {
            return !b.empty() && b.back().back().sequence_number == head;
        }));
        settle();
        CHECK(all->all_sequence_numbers() == range(1, head));
        CHECK(batch_sequence_numbers(all->batches()) == ranges);

        Seqs odd_expected;
        for (const auto& r : all_facts(store))
            if (r.event_type == "odd") odd_expected.push_back(r.sequence_number);
        REQUIRE(odd->wait_until([&](const auto& b) {
            return !b.empty() && b.back().back().sequence_number == odd_expected.back();
        }));
        settle();
        CHECK(odd->all_sequence_numbers() == odd_expected);
        REQUIRE(wait_for([&] { return cursor_position(store, "all") == head; }));
        s1.unsubscribe();
        s2.unsubscribe();
    }
}

TEST_CASE(
    "a handler failure during replay throws handler_failed, keeps the cursor, and a later "
    "registration replays from the same place",
    "[durable]") {
    Store store = make_store();
    (void)append_batches(store, {1, 2, 2});  // [1] [2,3] [4,5]
    auto failing = std::make_shared<BatchRecorder>();
    std::shared_ptr<DelayedAsync> async_state;

    SECTION("the handler throws") {
        expect_stream_error(
            [&] { (void)store.stream_all_durable(named("r"), throwing_at(failing, 3)); },
            ErrorCode::handler_failed);
    }
    SECTION("the handler returns false") {
        expect_stream_error(
            [&] { (void)store.stream_all_durable(named("r"), refusing_at(failing, 3)); },
            ErrorCode::handler_failed);
    }
    SECTION("an asynchronous handler reports failure") {
        async_state = std::make_shared<DelayedAsync>();
        failing = async_state->rec;
        expect_stream_error(
            [&] { (void)store.stream_all_durable(named("r"), delayed_async(async_state, 3)); },
            ErrorCode::handler_failed);
    }
    SECTION("a run handler reports failure after the batches before it succeeded") {
        async_state = std::make_shared<DelayedAsync>();
        failing = async_state->rec;
        expect_stream_error(
            [&] { (void)store.stream_all_durable(named("r"), run_handler(async_state, 3)); },
            ErrorCode::handler_failed);
    }
    SECTION("a filtered stream's handler throws") {
        expect_stream_error(
            [&] {
                (void)store.stream_to_durable(named("r"), query_of({types({"t"})}),
                                              throwing_at(failing, 3));
            },
            ErrorCode::handler_failed);
    }
    if (async_state) async_state->join();
    // The failing batch was the last one offered; nothing after it was.
    CHECK(batch_sequence_numbers(failing->batches()) == Ranges{{1}, {2, 3}});
    // The cursor covers the batch that succeeded, not the one that failed.
    CHECK(cursor_position(store, "r") == 1);
    settle();
    CHECK(cursor_position(store, "r") == 1);
    CHECK(failing->batches().size() == 2);

    // The name is free again, and replays from the failed batch on.
    auto rec = std::make_shared<BatchRecorder>();
    Subscription sub = store.stream_all_durable(named("r"), record_into(rec));
    CHECK(batch_sequence_numbers(rec->batches()) == Ranges{{2, 3}, {4, 5}});
    CHECK(cursor_position(store, "r") == 5);
    sub.unsubscribe();
}

TEST_CASE("a run handler gets the replay and live batches in runs, each batch once, in order",
          "[durable]") {
    Store store = make_store();
    const Ranges before = append_batches(store, {1, 2, 3, 1, 2});  // replayed: 5 batches
    auto state = std::make_shared<DelayedAsync>();
    // The first run is cut after its first batch: the rest is read again and delivered.
    Subscription sub = store.stream_all_durable(named("runs"), run_handler(state, 0, true));
    CHECK(batch_sequence_numbers(state->rec->batches()) == before);
    CHECK(cursor_position(store, "runs") == 9);
    Ranges all = before;
    for (const Seqs& r : append_batches(store, {2, 1}))
        all.push_back(r);
    REQUIRE(wait_for([&] { return cursor_position(store, "runs") == 12; }));
    CHECK(batch_sequence_numbers(state->rec->batches()) == all);
    CHECK(state->completed.load() >= 3);  // cut run, rest of replay, live
    sub.unsubscribe();
    state->join();
}

TEST_CASE("a failure on the first replayed batch leaves a new durable stream at the beginning",
          "[durable]") {
    Store store = make_store();
    (void)append_batches(store, {2, 1});  // [1,2] [3]
    auto failing = std::make_shared<BatchRecorder>();
    expect_stream_error(
        [&] { (void)store.stream_all_durable(named("first"), refusing_at(failing, 1)); },
        ErrorCode::handler_failed);
    CHECK(batch_sequence_numbers(failing->batches()) == Ranges{{1, 2}});
    CHECK(cursor_position(store, "first") == 0);
    for (int attempt = 0; attempt < 2; ++attempt) {
        auto again = std::make_shared<BatchRecorder>();
        expect_stream_error(
            [&] { (void)store.stream_all_durable(named("first"), throwing_at(again, 2)); },
            ErrorCode::handler_failed);
        CHECK(batch_sequence_numbers(again->batches()) == Ranges{{1, 2}});
    }
    auto rec = std::make_shared<BatchRecorder>();
    Subscription sub = store.stream_all_durable(named("first"), record_into(rec));
    CHECK(batch_sequence_numbers(rec->batches()) == Ranges{{1, 2}, {3}});
    sub.unsubscribe();
}

TEST_CASE("a handler failure during live delivery stops that durable stream and keeps its cursor",
          "[durable]") {
    Store store = make_store();
    auto rec = std::make_shared<BatchRecorder>();
    auto other = std::make_shared<BatchRecorder>();
    Subscription bystander = store.stream_all_durable(named("bystander"), record_into(other));
    Subscription sub;
    SECTION("the handler throws") {
        sub = store.stream_all_durable(named("live"), throwing_at(rec, 3));
    }
    SECTION("the handler returns false") {
        sub = store.stream_all_durable(named("live"), refusing_at(rec, 3));
    }
    CHECK(sub.active());
    CHECK_FALSE(sub.failure().has_value());
    (void)append_batches(store, {2});  // [1,2]
    REQUIRE(wait_for([&] { return cursor_position(store, "live") == 2; }));
    (void)append_batches(store, {1});  // [3] fails
    REQUIRE(wait_for([&] { return !sub.active(); }));
    CHECK(sub.failure().has_value());
    (void)append_batches(store, {1});  // [4] is not delivered to the failed stream
    REQUIRE(other->wait_for_batches(3));
    settle();
    CHECK(batch_sequence_numbers(rec->batches()) == Ranges{{1, 2}, {3}});
    CHECK(cursor_position(store, "live") == 2);
    CHECK(sub.position() == 2);
    // Other streams go on.
    CHECK(bystander.active());
    CHECK(batch_sequence_numbers(other->batches()) == Ranges{{1, 2}, {3}, {4}});

    // Registering the name again replays from the failed batch.
    auto again = std::make_shared<BatchRecorder>();
    Subscription sub2 = store.stream_all_durable(named("live"), record_into(again));
    CHECK(batch_sequence_numbers(again->batches()) == Ranges{{3}, {4}});
    CHECK(cursor_position(store, "live") == 4);
    sub2.unsubscribe();
    bystander.unsubscribe();
}

TEST_CASE("the same durable name reuses its cursor; another name starts from the beginning",
          "[durable]") {
    Store store = make_store();
    (void)append_batches(store, {1, 1});  // [1] [2]
    auto first = std::make_shared<BatchRecorder>();
    Subscription sub = store.stream_all_durable(named("name"), record_into(first));
    (void)append_batches(store, {2});  // [3,4], live
    REQUIRE(first->wait_for_batches(3));
    REQUIRE(wait_for([&] { return cursor_position(store, "name") == 4; }));
    sub.unsubscribe();

    (void)append_batches(store, {1, 3});  // [5] [6,7,8]
    auto second = std::make_shared<BatchRecorder>();
    Subscription sub2 = store.stream_all_durable(named("name"), record_into(second));
    CHECK(batch_sequence_numbers(second->batches()) == Ranges{{5}, {6, 7, 8}});

    auto fresh = std::make_shared<BatchRecorder>();
    Subscription sub3 = store.stream_all_durable(named("other name"), record_into(fresh));
    CHECK(fresh->all_sequence_numbers() == range(1, 8));
    CHECK(fresh->batches().size() == 5);
    settle();
    CHECK(batch_sequence_numbers(first->batches()) == Ranges{{1}, {2}, {3, 4}});
    sub2.unsubscribe();
    sub3.unsubscribe();
}

TEST_CASE("unsubscribe keeps the durable cursor", "[durable]") {
    Store store = make_store();
    auto rec = std::make_shared<BatchRecorder>();
    Subscription sub = store.stream_all_durable(named("keep"), record_into(rec));
    (void)append_batches(store, {3});
    REQUIRE(rec->wait_for_batches(1));
    REQUIRE(wait_for([&] { return cursor_position(store, "keep") == 3; }));
    sub.unsubscribe();
    CHECK_FALSE(sub.active());
    CHECK_FALSE(sub.failure().has_value());
    (void)append_batches(store, {1});  // [4] while unsubscribed
    settle();
    CHECK(rec->batches().size() == 1);
    CHECK(cursor_of(store, "keep") == SequenceNumber{3});

    auto again = std::make_shared<BatchRecorder>();
    Subscription sub2 = store.stream_all_durable(named("keep"), record_into(again));
    CHECK(batch_sequence_numbers(again->batches()) == Ranges{{4}});
    (void)append_batches(store, {2});
    REQUIRE(again->wait_for_batches(2));
    CHECK(batch_sequence_numbers(again->batches()) == Ranges{{4}, {5, 6}});
    sub2.unsubscribe();
}

TEST_CASE(
    "a filtered durable stream delivers only matching facts and its cursor moves past non-matching "
    "batches",
    "[durable]") {
    Store store = make_store();
    (void)store.append({event("a", numbered("i", 1))});  // 1
    (void)store.append({event("b")});                    // 2
    (void)store.append({event("b"), event("b")});        // 3, 4
    (void)store.append(
        {event("a", numbered("i", 5)), event("b"), event("a", numbered("i", 7))});  // 5-7
    (void)store.append({event("b")});                                               // 8
    const EventQuery only_a = query_of({types({"a"})});
    auto rec = std::make_shared<BatchRecorder>();
    Subscription sub = store.stream_to_durable(named("only-a"), only_a, record_into(rec));
    CHECK(batch_sequence_numbers(rec->batches()) == Ranges{{1}, {5, 7}});
    CHECK(rec->batches().at(1).at(1).payload == R"({"i":7})");
    REQUIRE(wait_for([&] { return cursor_position(store, "only-a") == 8; }));

    // Live: a batch with no match moves the cursor and delivers nothing.
    (void)store.append({event("b"), event("c")});  // 9, 10
    REQUIRE(wait_for([&] { return cursor_position(store, "only-a") == 10; }));
    (void)store.append({event("c"), event("a", numbered("i", 12))});  // 11, 12
    REQUIRE(rec->wait_for_batches(3));
    REQUIRE(wait_for([&] { return cursor_position(store, "only-a") == 12; }));
    settle();
    CHECK(batch_sequence_numbers(rec->batches()) == Ranges{{1}, {5, 7}, {12}});
    sub.unsubscribe();

    // The stored cursor remembers its query.
    for (const auto& info : store.durable_cursors()) {
        if (info.name != "only-a") continue;
        REQUIRE_FALSE(info.query_json.empty());
        EventQuery stored = parse_event_query(info.query_json);
        REQUIRE(stored.filters.has_value());
        REQUIRE(stored.filters->size() == 1);
        CHECK((*stored.filters)[0].event_types == std::vector<std::string>{"a"});
    }

    (void)store.append({event("b")});  // 13
    auto again = std::make_shared<BatchRecorder>();
    Subscription sub2 = store.stream_to_durable(named("only-a"), only_a, record_into(again));
    CHECK(again->batches().empty());
    REQUIRE(wait_for([&] { return cursor_position(store, "only-a") == 13; }));
    sub2.unsubscribe();
}

TEST_CASE("durable_cursors lists every durable stream with its position", "[durable]") {
    Store store = make_store();
    CHECK(store.durable_cursors().empty());
    (void)append_batches(store, {2, 1});
    auto r1 = std::make_shared<BatchRecorder>();
    auto r2 = std::make_shared<BatchRecorder>();
    Subscription s1 = store.stream_all_durable(named("one"), record_into(r1));
    Subscription s2 =
        store.stream_to_durable(named("two"), query_of({types({"t"})}), record_into(r2));
    REQUIRE(wait_for(
        [&] { return cursor_position(store, "one") == 3 && cursor_position(store, "two") == 3; }));
    const auto cursors = store.durable_cursors();
    CHECK(cursors.size() == 2);
    for (const auto& info : cursors) {
        CHECK((info.name == "one" || info.name == "two"));
        CHECK(info.position == 3);
        if (info.name == "one" && !info.query_json.empty())
            CHECK_FALSE(parse_event_query(info.query_json).filters.has_value());
    }
    s1.unsubscribe();
    s2.unsubscribe();
}

TEST_CASE("registering an active durable name again is stream_busy", "[durable]") {
    Store store = make_store();
    (void)append_batches(store, {1});
    auto rec = std::make_shared<BatchRecorder>();
    Subscription sub = store.stream_all_durable(named("busy"), record_into(rec));
    auto intruder = std::make_shared<BatchRecorder>();
    expect_stream_error(
        [&] { (void)store.stream_all_durable(named("busy"), record_into(intruder)); },
        ErrorCode::stream_busy);
    expect_stream_error(
        [&] {
            (void)store.stream_to_durable(named("busy"), query_of({types({"t"})}),
                                          record_into(intruder));
        },
        ErrorCode::stream_busy);
    // The non-blocking form reports it too (thrown or passed to its callback).
    std::promise<std::exception_ptr> reported;
    try {
        store.stream_to_durable_async(named("busy"), std::nullopt, record_into(intruder),
                                      [&reported](Subscription, std::exception_ptr error) {
                                          reported.set_value(std::move(error));
                                      });
        auto f = reported.get_future();
        REQUIRE(f.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
        std::exception_ptr error = f.get();
        REQUIRE(error);
        expect_stream_error([&] { std::rethrow_exception(error); }, ErrorCode::stream_busy);
    } catch (const StreamError& e) {
        CHECK(e.code() == ErrorCode::stream_busy);
    }

    // The active stream is undisturbed, and the intruders got nothing.
    (void)append_batches(store, {1});
    REQUIRE(rec->wait_for_batches(2));
    settle();
    CHECK(intruder->batches().empty());
    CHECK(sub.active());
    CHECK(batch_sequence_numbers(rec->batches()) == Ranges{{1}, {2}});

    // After unsubscribe the name can be registered again.
    sub.unsubscribe();
    auto next = std::make_shared<BatchRecorder>();
    Subscription sub2 = store.stream_all_durable(named("busy"), record_into(next));
    CHECK(sub2.active());
    CHECK(next->batches().empty());
    sub2.unsubscribe();
}

TEST_CASE("an asynchronous handler's success advances the durable cursor only when it completes",
          "[durable]") {
    Store store = make_store();
    auto held = std::make_shared<Held>();
    auto batches = std::make_shared<BatchRecorder>();
    Subscription sub = store.stream_all_durable(
        named("async"), StreamHandler::async([held, batches](const Batch& batch, Completion done) {
            batches->record(batch);
            std::lock_guard lock(held->mutex);
            held->held.emplace_back(std::move(done));
        }));
    (void)append_batches(store, {2});  // [1,2]
    REQUIRE(wait_for([&] { return held->count() == 1; }));
    (void)append_batches(store, {1});  // [3]
    settle();
    CHECK(cursor_position(store, "async") == 0);
    CHECK(sub.position() == 0);
    CHECK(held->count() == 1);  // the next batch waits for the first to complete

    held->finish(0, true);
    REQUIRE(wait_for([&] { return cursor_position(store, "async") == 2; }));
    REQUIRE(wait_for([&] { return held->count() == 2; }));
    settle();
    CHECK(cursor_position(store, "async") == 2);

    // A failed completion stops the stream and keeps the cursor.
    held->finish(1, false);
    REQUIRE(wait_for([&] { return !sub.active(); }));
    CHECK(sub.failure().has_value());
    settle();
    CHECK(cursor_position(store, "async") == 2);
    CHECK(batch_sequence_numbers(batches->batches()) == Ranges{{1, 2}, {3}});

    auto again = std::make_shared<BatchRecorder>();
    Subscription sub2 = store.stream_all_durable(named("async"), record_into(again));
    CHECK(batch_sequence_numbers(again->batches()) == Ranges{{3}});
    sub2.unsubscribe();
}

TEST_CASE("stream_to_durable_async calls its callback once with the subscription after the replay",
          "[durable]") {
    Store store = make_store();
    (void)append_batches(store, {1, 2, 1});  // [1] [2,3] [4]
    (void)store.append({event("other")});    // 5
    auto rec = std::make_shared<BatchRecorder>();
    std::atomic<int> calls{0};
    std::promise<std::pair<Subscription, std::exception_ptr>> registered;
    std::atomic<std::size_t> batches_at_callback{0};

    const bool filtered = GENERATE(false, true);
    INFO((filtered ? "stream_to_durable_async with a query"
                   : "stream_to_durable_async without a query"));
    std::optional<EventQuery> query;
    if (filtered) query = query_of({types({"t"})});
    store.stream_to_durable_async(named("async-reg"), query, record_into(rec),
                                  [&](Subscription s, std::exception_ptr error) {
                                      batches_at_callback = rec->batches().size();
                                      if (++calls == 1)
                                          registered.set_value({std::move(s), std::move(error)});
                                  });
    auto f = registered.get_future();
    REQUIRE(f.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    auto [sub, error] = f.get();
    CHECK_FALSE(error);
    CHECK(sub.active());
    CHECK(batches_at_callback.load() == (filtered ? 3u : 4u));
    CHECK(batch_sequence_numbers(rec->batches()) ==
          (filtered ? Ranges{{1}, {2, 3}, {4}} : Ranges{{1}, {2, 3}, {4}, {5}}));

    (void)append_batches(store, {1});  // 6, live
    REQUIRE(rec->wait_for_batches(filtered ? 4 : 5));
    settle();
    CHECK(calls.load() == 1);
    CHECK(rec->batches().back() == Batch{all_facts(store).back()});
    sub.unsubscribe();
}

TEST_CASE("stream_to_durable_async reports a replay failure to its callback once", "[durable]") {
    Store store = make_store();
    (void)append_batches(store, {1, 1});
    auto rec = std::make_shared<BatchRecorder>();
    std::atomic<int> calls{0};
    std::promise<std::pair<Subscription, std::exception_ptr>> registered;
    store.stream_to_durable_async(named("fails"), std::nullopt, throwing_at(rec, 2),
                                  [&](Subscription s, std::exception_ptr error) {
                                      if (++calls == 1)
                                          registered.set_value({std::move(s), std::move(error)});
                                  });
    auto f = registered.get_future();
    REQUIRE(f.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    auto [sub, error] = f.get();
    REQUIRE(error);
    expect_stream_error([&] { std::rethrow_exception(error); }, ErrorCode::handler_failed);
    CHECK_FALSE(sub.active());
    (void)append_batches(store, {1});
    settle();
    CHECK(calls.load() == 1);
    CHECK(batch_sequence_numbers(rec->batches()) == Ranges{{1}, {2}});
    CHECK(cursor_position(store, "fails") == 1);
}

TEST_CASE("stream_to_durable with a malformed query is invalid input and keeps the name free",
          "[durable]") {
    Store store = make_store();
    (void)append_batches(store, {1});
    auto rec = std::make_shared<BatchRecorder>();
    try {
        (void)store.stream_to_durable(named("bad"), query_of({predicates({"[1,"})}),
                                      record_into(rec));
        FAIL("expected InvalidInput");
    } catch (const InvalidInput& e) {
        CHECK(e.code() == ErrorCode::invalid_json);
    }
    CHECK(rec->batches().empty());
    CHECK(cursor_position(store, "bad") == 0);
    Subscription sub = store.stream_all_durable(named("bad"), record_into(rec));
    CHECK(batch_sequence_numbers(rec->batches()) == Ranges{{1}});
    sub.unsubscribe();
}
