// Conditional append (DESIGN.md §1 "Conditional append", and "a failed append_if consumes
// no sequence number").
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "../support/helpers.hpp"
#include "../support/store_factory.hpp"

using namespace factstr;
using namespace factstr::testing;

namespace {

EventQuery account(int id, std::optional<SequenceNumber> after = std::nullopt) {
    return query_of({predicates({numbered("account", id)})}, after);
}

NewEvent deposit(int account_id, int amount = 1) {
    return event("deposited", "{\"account\":" + std::to_string(account_id) +
                                  ",\"amount\":" + std::to_string(amount) + "}");
}

// The log must be exactly 1..head with no hole, and hold `count` facts.
void check_gap_free(const Store& store, SequenceNumber count) {
    CHECK(store.head() == count);
    CHECK(sequence_numbers(all_facts(store)) == range(1, count));
}

}  // namespace

TEST_CASE("append_if commits when the expected version is none and the context is empty",
          "[append_if]") {
    Store store = make_store();
    AppendIfResult first = store.append_if({deposit(1), deposit(1)}, account(1), std::nullopt);
    REQUIRE(first.committed());
    CHECK(static_cast<bool>(first));
    CHECK(first.conflict() == nullptr);
    CHECK(*first.append_result() == AppendResult{1, 2, 2});

    // Another key's context is still empty, although the log is not.
    AppendIfResult other = store.append_if({deposit(2)}, account(2), std::nullopt);
    REQUIRE(other.committed());
    CHECK(*other.append_result() == AppendResult{3, 3, 1});
    check_gap_free(store, 3);
}

TEST_CASE("append_if commits when the expected version equals the context's current version",
          "[append_if]") {
    Store store = make_store();
    (void)store.append({deposit(1), deposit(2)});  // 1, 2
    (void)store.append({deposit(2)});              // 3
    QueryResult context = store.query(account(1));
    REQUIRE(context.current_context_version == 1u);
    AppendIfResult r =
        store.append_if({deposit(1, 5)}, account(1), context.current_context_version);
    REQUIRE(r.committed());
    CHECK(*r.append_result() == AppendResult{4, 4, 1});

    // The version moved to 4: the next writer of this context must expect 4.
    AppendIfResult next = store.append_if({deposit(1, 6), deposit(1, 7)}, account(1), 4);
    REQUIRE(next.committed());
    CHECK(*next.append_result() == AppendResult{5, 6, 2});
    QueryResult facts = store.query(account(1));
    CHECK(sequence_numbers(facts.event_records) == std::vector<SequenceNumber>{1, 4, 5, 6});
    CHECK(facts.event_records[1].payload == R"({"account":1,"amount":5})");
}

TEST_CASE("a stale expected version is a conflict carrying the expected and the actual version",
          "[append_if]") {
    Store store = make_store();
    (void)store.append({deposit(1)});  // 1
    (void)store.append({deposit(1)});  // 2
    (void)store.append({deposit(3)});  // 3

    AppendIfResult stale = store.append_if({deposit(1)}, account(1), 1);
    REQUIRE_FALSE(stale.committed());
    CHECK_FALSE(static_cast<bool>(stale));
    CHECK(stale.append_result() == nullptr);
    REQUIRE(stale.conflict() != nullptr);
    CHECK(*stale.conflict() == ConditionalAppendConflict{1, 2});

    // Expecting "no fact yet" while there is one.
    AppendIfResult none_expected = store.append_if({deposit(1)}, account(1), std::nullopt);
    REQUIRE(none_expected.conflict() != nullptr);
    CHECK(*none_expected.conflict() == ConditionalAppendConflict{std::nullopt, 2});

    // Expecting a version when the context is empty.
    AppendIfResult some_expected = store.append_if({deposit(7)}, account(7), 2);
    REQUIRE(some_expected.conflict() != nullptr);
    CHECK(*some_expected.conflict() == ConditionalAppendConflict{2, std::nullopt});

    // Expecting a version from the future (higher than the actual one).
    AppendIfResult future = store.append_if({deposit(1)}, account(1), 3);
    REQUIRE(future.conflict() != nullptr);
    CHECK(*future.conflict() == ConditionalAppendConflict{3, 2});

    // Expecting the head when the context's version is lower.
    AppendIfResult head_expected = store.append_if({deposit(3)}, account(1), store.head());
    REQUIRE(head_expected.conflict() != nullptr);
    CHECK(*head_expected.conflict() == ConditionalAppendConflict{3, 2});

    check_gap_free(store, 3);
}

TEST_CASE("on a payload-filtered context, a change to another key's facts does not conflict",
          "[append_if]") {
    Store store = make_store();
    for (int i = 0; i < 50; ++i)
        (void)store.append({deposit(i % 5)});
    const auto v1 = store.query(account(1)).current_context_version;
    REQUIRE(v1 == 47u);

    // Others write to accounts 2 and 3, and to other event types of no account at all.
    (void)store.append({deposit(2)});
    (void)store.append({deposit(3), event("audited", R"({"account":"1"})")});
    (void)store.append({event("deposited", R"({"account":11})")});

    AppendIfResult r = store.append_if({deposit(1, 9)}, account(1), v1);
    REQUIRE(r.committed());
    CHECK(r.append_result()->first_sequence_number == 55);

    // A write to account 1 itself does conflict.
    const auto v2 = store.query(account(1)).current_context_version;
    REQUIRE(v2 == 55u);
    (void)store.append({deposit(1, 10)});  // 56
    AppendIfResult c = store.append_if({deposit(1, 11)}, account(1), v2);
    REQUIRE(c.conflict() != nullptr);
    CHECK(*c.conflict() == ConditionalAppendConflict{55, 56});
}

TEST_CASE("the context version of append_if follows the query's filters, types and ORs",
          "[append_if]") {
    Store store = make_store();
    (void)store.append({event("opened", numbered("account", 1))});     // 1
    (void)store.append({event("deposited", numbered("account", 1))});  // 2
    (void)store.append({event("opened", numbered("account", 2))});     // 3
    (void)store.append({event("closed", numbered("account", 3))});     // 4

    const EventQuery opened_1 = query_of({EventFilter{
        std::vector<std::string>{"opened"}, std::vector<std::string>{numbered("account", 1)}}});
    AppendIfResult c1 = store.append_if({event("x")}, opened_1, 2);
    REQUIRE(c1.conflict() != nullptr);
    CHECK(*c1.conflict() == ConditionalAppendConflict{2, 1});

    const EventQuery either = query_of({types({"closed"}), predicates({numbered("account", 1)})});
    AppendIfResult c2 = store.append_if({event("x")}, either, 2);
    REQUIRE(c2.conflict() != nullptr);
    CHECK(*c2.conflict() == ConditionalAppendConflict{2, 4});

    // Without filters the context is the whole log: its version is the head.
    AppendIfResult c3 = store.append_if({event("x")}, EventQuery{}, 3);
    REQUIRE(c3.conflict() != nullptr);
    CHECK(*c3.conflict() == ConditionalAppendConflict{3, 4});
    AppendIfResult ok = store.append_if({event("x")}, EventQuery{}, 4);
    REQUIRE(ok.committed());
    CHECK(*ok.append_result() == AppendResult{5, 5, 1});

    AppendIfResult ok2 = store.append_if({event("y")}, opened_1, 1);
    CHECK(ok2.committed());
}

TEST_CASE("a failed conditional append writes nothing and consumes no sequence number",
          "[append_if]") {
    Store store = make_store();
    (void)store.append({deposit(1), deposit(2)});  // 1, 2
    for (int i = 0; i < 5; ++i) {
        AppendIfResult conflict =
            store.append_if({deposit(1, 100 + i), deposit(1, 200 + i)}, account(1), std::nullopt);
        REQUIRE(conflict.conflict() != nullptr);
    }
    CHECK(store.head() == 2);
    CHECK(store.query(account(1)).event_records.size() == 1);
    CHECK(store.query(query_of({predicates({R"({"amount":100})"})})).event_records.empty());

    // The next appends continue at 3, with no hole.
    CHECK(store.append({deposit(3)}) == AppendResult{3, 3, 1});
    AppendIfResult ok = store.append_if({deposit(1), deposit(1)}, account(1), 1);
    REQUIRE(ok.committed());
    CHECK(*ok.append_result() == AppendResult{4, 5, 2});
    check_gap_free(store, 5);
}

TEST_CASE("min_sequence_number of the context query is ignored for the version", "[append_if]") {
    Store store = make_store();
    (void)store.append({deposit(1)});  // 1
    (void)store.append({deposit(2)});  // 2
    (void)store.append({deposit(1)});  // 3
    for (int i = 0; i < 10; ++i)
        (void)store.append({deposit(2)});  // 4..13

    // A cursor past every fact of account 1: the query returns no row, the version is 3.
    const EventQuery ctx = account(1, 10);
    REQUIRE(store.query(ctx).event_records.empty());
    REQUIRE(store.query(ctx).current_context_version == 3u);

    AppendIfResult as_if_empty = store.append_if({deposit(1)}, ctx, std::nullopt);
    REQUIRE(as_if_empty.conflict() != nullptr);
    CHECK(*as_if_empty.conflict() == ConditionalAppendConflict{std::nullopt, 3});

    AppendIfResult as_if_cursor = store.append_if({deposit(1)}, ctx, 10);
    REQUIRE(as_if_cursor.conflict() != nullptr);
    CHECK(*as_if_cursor.conflict() == ConditionalAppendConflict{10, 3});

    AppendIfResult ok = store.append_if({deposit(1)}, ctx, 3);
    REQUIRE(ok.committed());
    CHECK(*ok.append_result() == AppendResult{14, 14, 1});

    // A cursor below the version changes nothing either.
    AppendIfResult ok2 = store.append_if({deposit(1)}, account(1, 2), 14);
    CHECK(ok2.committed());
    check_gap_free(store, 15);
}

TEST_CASE(
    "append_if with invalid events or an invalid context query throws InvalidInput and writes "
    "nothing",
    "[append_if]") {
    Store store = make_store();
    (void)store.append({deposit(1)});  // 1

    SECTION("an empty batch") {
        try {
            (void)store.append_if({}, account(1), 1);
            FAIL("expected InvalidInput");
        } catch (const InvalidInput& e) {
            CHECK(e.code() == ErrorCode::empty_append);
        }
        // Also when the expected version is wrong: invalid input is not a conflict.
        try {
            (void)store.append_if({}, account(1), 99);
            FAIL("expected InvalidInput");
        } catch (const InvalidInput& e) {
            CHECK(e.code() == ErrorCode::empty_append);
        }
    }
    SECTION("a payload that is not JSON") {
        try {
            (void)store.append_if({deposit(1), event("deposited", "{\"account\":1,")}, account(1),
                                  1);
            FAIL("expected InvalidInput");
        } catch (const InvalidInput& e) {
            CHECK(e.code() == ErrorCode::invalid_json);
            CHECK_THAT(e.what(), Catch::Contains("event 1"));
        }
        try {
            (void)store.append_if({event("deposited", "nope")}, account(1), 99);
            FAIL("expected InvalidInput");
        } catch (const InvalidInput& e) {
            CHECK(e.code() == ErrorCode::invalid_json);
        }
    }
    SECTION("an empty event type") {
        CHECK_THROWS_AS(store.append_if({deposit(1), event("", "{}")}, account(1), 1),
                        InvalidInput);
    }
    SECTION("a malformed context predicate") {
        try {
            (void)store.append_if({deposit(1)}, query_of({predicates({"{\"account\":"})}), 1);
            FAIL("expected InvalidInput");
        } catch (const InvalidInput& e) {
            CHECK(e.code() == ErrorCode::invalid_json);
        }
    }
    CHECK(store.head() == 1);
    CHECK(all_facts(store).size() == 1);
    // Nothing was consumed: the next append continues at 2.
    CHECK(store.append({deposit(2)}) == AppendResult{2, 2, 1});
}
