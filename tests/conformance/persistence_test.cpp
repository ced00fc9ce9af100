// Persistence (DESIGN.md §1 "Durable streams": SQLite and PostgreSQL persist facts, batch
// boundaries and cursors, so replay survives restarts; §1 "Conditional append": the check is
// atomic also across processes). A backend that keeps no state across store objects (memory)
// has nothing to show here.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "../support/helpers.hpp"
#include "../support/store_factory.hpp"

using namespace factstr;
using namespace factstr::testing;

namespace {

Ranges append_sized(Store& store, const std::vector<int>& sizes, const std::string& type = "t") {
    Ranges out;
    for (int size : sizes) {
        std::vector<NewEvent> batch;
        for (int i = 0; i < size; ++i)
            batch.push_back(
                event(type, "{\"i\":" + std::to_string(i) + ",\"nested\":{\"xs\":[1,2.5,\"s\"]}}"));
        AppendResult r = store.append(std::move(batch));
        out.push_back(range(r.first_sequence_number, r.last_sequence_number));
    }
    return out;
}

}  // namespace

TEST_CASE("facts and batch boundaries survive reopening the store", "[persistence]") {
    Store store = make_store();
    Ranges ranges = append_sized(store, {1, 3, 2, 1});
    (void)store.append({event("other", R"({"account":"a","tags":["x","y"],"n":1.0})")});
    ranges.push_back({8});
    const std::vector<EventRecord> before = all_facts(store);
    REQUIRE(before.size() == 8);
    store.close();

    auto reopened = reopen_store();
    if (!reopened) {
        SUCCEED("backend keeps no state across store objects");
        return;
    }
    CHECK(reopened->head() == 8);
    // Every field, occurred_at included, reads back as it was.
    CHECK(all_facts(*reopened) == before);
    CHECK(sequence_numbers(reopened->query(query_of({predicates({R"({"n":1})"})})).event_records) ==
          Seqs{8});
    CHECK(reopened->query(query_of({types({"t"})})).current_context_version == 7u);

    // A durable replay shows the original batch boundaries.
    auto rec = std::make_shared<BatchRecorder>();
    Subscription sub =
        reopened->stream_all_durable(DurableStream{"after-reopen"}, record_into(rec));
    CHECK(batch_sequence_numbers(rec->batches()) == ranges);
    auto typed = std::make_shared<BatchRecorder>();
    Subscription sub2 = reopened->stream_to_durable(DurableStream{"typed-after-reopen"},
                                                    query_of({types({"t"})}), record_into(typed));
    CHECK(batch_sequence_numbers(typed->batches()) == Ranges{{1}, {2, 3, 4}, {5, 6}, {7}});

    // The sequence continues with no hole and no reuse.
    CHECK(reopened->append({event("t")}) == AppendResult{9, 9, 1});
    REQUIRE(rec->wait_for_batches(ranges.size() + 1));
    CHECK(batch_sequence_numbers(rec->batches()).back() == Seqs{9});
    sub.unsubscribe();
    sub2.unsubscribe();
}

TEST_CASE("durable cursors survive reopening and replay resumes after them", "[persistence]") {
    Store store = make_store();
    (void)append_sized(store, {1, 2});  // [1] [2,3]
    auto rec = std::make_shared<BatchRecorder>();
    Subscription sub = store.stream_all_durable(DurableStream{"resume"}, record_into(rec));
    (void)append_sized(store, {1});  // [4], live
    REQUIRE(rec->wait_for_batches(3));
    REQUIRE(wait_for([&] { return cursor_position(store, "resume") == 4; }));
    sub.unsubscribe();

    // A filtered stream whose cursor moved past batches it did not match.
    (void)append_sized(store, {2}, "skip");  // [5,6]
    auto only_t = std::make_shared<BatchRecorder>();
    Subscription filtered = store.stream_to_durable(DurableStream{"only-t"},
                                                    query_of({types({"t"})}), record_into(only_t));
    CHECK(only_t->all_sequence_numbers() == range(1, 4));
    REQUIRE(wait_for([&] { return cursor_position(store, "only-t") == 6; }));
    filtered.unsubscribe();

    // A stream that failed on its second batch.
    auto failing = std::make_shared<BatchRecorder>();
    try {
        (void)store.stream_all_durable(DurableStream{"failed"}, [failing](const Batch& batch) {
            failing->record(batch);
            return batch.front().sequence_number != 2;
        });
        FAIL("expected StreamError");
    } catch (const StreamError& e) {
        CHECK(e.code() == ErrorCode::handler_failed);
    }
    CHECK(cursor_position(store, "failed") == 1);
    store.close();

    auto reopened = reopen_store();
    if (!reopened) {
        SUCCEED("backend keeps no state across store objects");
        return;
    }
    CHECK(cursor_of(*reopened, "resume") == SequenceNumber{4});
    CHECK(cursor_of(*reopened, "only-t") == SequenceNumber{6});
    CHECK(cursor_of(*reopened, "failed") == SequenceNumber{1});

    (void)append_sized(*reopened, {2});  // [7,8]
    auto resumed = std::make_shared<BatchRecorder>();
    Subscription s1 = reopened->stream_all_durable(DurableStream{"resume"}, record_into(resumed));
    CHECK(batch_sequence_numbers(resumed->batches()) == Ranges{{5, 6}, {7, 8}});

    auto resumed_t = std::make_shared<BatchRecorder>();
    Subscription s2 = reopened->stream_to_durable(DurableStream{"only-t"}, query_of({types({"t"})}),
                                                  record_into(resumed_t));
    CHECK(batch_sequence_numbers(resumed_t->batches()) == Ranges{{7, 8}});

    auto retried = std::make_shared<BatchRecorder>();
    Subscription s3 = reopened->stream_all_durable(DurableStream{"failed"}, record_into(retried));
    CHECK(batch_sequence_numbers(retried->batches()) == Ranges{{2, 3}, {4}, {5, 6}, {7, 8}});
    CHECK(wait_for([&] { return cursor_position(*reopened, "failed") == 8; }));
    s1.unsubscribe();
    s2.unsubscribe();
    s3.unsubscribe();
}

TEST_CASE("two store objects over the same storage share one log and one conditional check",
          "[persistence]") {
    Store first = make_store();
    (void)first.append({event("a", R"({"account":1})")});  // 1
    auto second = reopen_store();
    if (!second) {
        SUCCEED("backend keeps no state across store objects");
        return;
    }
    CHECK(second->head() == 1);
    CHECK(all_facts(*second) == all_facts(first));

    // Sequence numbers are global across both.
    CHECK(second->append({event("a", R"({"account":2})")}) == AppendResult{2, 2, 1});
    CHECK(first.append({event("a", R"({"account":1})")}) == AppendResult{3, 3, 1});
    CHECK(second->head() == 3);

    // The version check sees the other object's commits.
    const EventQuery account1 = query_of({predicates({R"({"account":1})"})});
    const auto version = first.query(account1).current_context_version;
    REQUIRE(version == 3u);
    (void)second->append({event("a", R"({"account":1})")});  // 4
    AppendIfResult stale = first.append_if({event("a", R"({"account":1})")}, account1, version);
    REQUIRE(stale.conflict() != nullptr);
    CHECK(*stale.conflict() == ConditionalAppendConflict{3, 4});
    AppendIfResult ok = first.append_if({event("a", R"({"account":1})")}, account1, 4);
    REQUIRE(ok.committed());
    CHECK(*ok.append_result() == AppendResult{5, 5, 1});
    CHECK(sequence_numbers(all_facts(*second)) == range(1, 5));

    // A live stream on one object sees what the other commits.
    auto rec = std::make_shared<BatchRecorder>();
    Subscription sub = second->stream_all(record_into(rec));
    (void)first.append({event("b"), event("c")});  // 6, 7
    REQUIRE(rec->wait_for_batches(1, std::chrono::seconds(15)));
    settle();
    CHECK(batch_sequence_numbers(rec->batches()) == Ranges{{6, 7}});
    sub.unsubscribe();
}
