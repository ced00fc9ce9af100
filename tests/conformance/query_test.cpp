// Queries (DESIGN.md §1 "Queries"): filters, payload predicates, ordering, the read cursor
// and the two versions a query reports.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../support/helpers.hpp"
#include "../support/store_factory.hpp"

using namespace factstr;
using namespace factstr::testing;

namespace {

std::optional<SequenceNumber> last_of(const Seqs& seqs) {
    if (seqs.empty()) return std::nullopt;
    return seqs.back();
}

std::string cursor_text(std::optional<SequenceNumber> cursor) {
    return cursor ? std::to_string(*cursor) : std::string("none");
}

// Runs `query` at many read cursors (none, 0, near every expected match, the middle, near
// and past the head) and checks rows, last_returned_sequence_number and
// current_context_version against `expected`, the ascending sequence numbers of every fact
// the filters match. Cursors close to the head and far from it take different paths in an
// indexed implementation.
void check_query(const Store& store, EventQuery query, const Seqs& expected) {
    const SequenceNumber head = store.head();
    std::set<std::optional<SequenceNumber>> cursors{std::nullopt,
                                                    SequenceNumber{0},
                                                    SequenceNumber{1},
                                                    head / 4,
                                                    head / 2,
                                                    head * 3 / 4,
                                                    head > 10 ? head - 10 : 0,
                                                    head > 2 ? head - 2 : 0,
                                                    head > 0 ? head - 1 : 0,
                                                    head,
                                                    head + 1,
                                                    head + 100};
    // Around the first few and last few matches.
    for (std::size_t i = 0; i < expected.size(); ++i) {
        if (i < 4 || i + 4 >= expected.size()) {
            cursors.insert(expected[i] - 1);
            cursors.insert(expected[i]);
        }
    }
    for (const auto& cursor : cursors) {
        query.min_sequence_number = cursor;
        Seqs want;
        for (SequenceNumber s : expected)
            if (!cursor || s > *cursor) want.push_back(s);
        QueryResult result = store.query(query);
        INFO("query " << to_json(query) << " at min_sequence_number " << cursor_text(cursor));
        CHECK(sequence_numbers(result.event_records) == want);
        CHECK(result.last_returned_sequence_number == last_of(want));
        CHECK(result.current_context_version == last_of(expected));
    }
}

Seqs seqs_of(const Store& store, const EventQuery& query) {
    return sequence_numbers(store.query(query).event_records);
}

// A log with one "doc" fact per named payload, spread among "filler" facts, so that an
// indexed lookup and a scan of the log are both plausible plans.
struct PredicateCatalog {
    Store store = make_store();
    std::map<std::string, SequenceNumber> at;

    explicit PredicateCatalog(const std::vector<std::pair<std::string, std::string>>& docs) {
        long long filler = 0;
        for (const auto& [name, payload] : docs) {
            for (int i = 0; i < 5; ++i, ++filler)
                (void)store.append({event("filler", numbered("f", filler))});
            at[name] = store.append({event("doc", payload)}).first_sequence_number;
        }
        for (int i = 0; i < 5; ++i, ++filler)
            (void)store.append({event("filler", numbered("f", filler))});
    }

    Seqs seqs(const std::vector<std::string>& names) const {
        Seqs out;
        for (const auto& name : names)
            out.push_back(at.at(name));
        std::sort(out.begin(), out.end());
        return out;
    }

    // Checks the predicate alone, and ANDed with the "doc" event type, at many cursors.
    void check(const std::string& predicate, const std::vector<std::string>& names) const {
        INFO("predicate " << predicate);
        const Seqs expected = seqs(names);
        check_query(store, query_of({predicates({predicate})}), expected);
        check_query(store,
                    query_of({EventFilter{std::vector<std::string>{"doc"},
                                          std::vector<std::string>{predicate}}}),
                    expected);
    }
};

const std::vector<std::pair<std::string, std::string>> kCatalog = {
    {"int1", R"({"n":1})"},
    {"dbl1", R"({"n":1.0})"},
    {"dbl15", R"({"n":1.5})"},
    {"str1", R"({"n":"1"})"},
    {"exp100", R"({"n":1e2})"},
    {"int100", R"({"n":100})"},
    {"neg", R"({"n":-7})"},
    {"meta_eu", R"({"meta":{"region":"eu","level":2,"deep":{"x":true}}})"},
    {"meta_us", R"({"meta":{"region":"us","level":2}})"},
    {"meta_str", R"({"meta":"eu"})"},
    {"tags", R"({"tags":["a","b","c"]})"},
    {"tags_str", R"({"tags":"a"})"},
    {"tags_nested", R"({"tags":[["a"],"z"]})"},
    {"xs", R"({"xs":[1.0,2,3]})"},
    {"items", R"({"items":[{"sku":"x","qty":1},{"sku":"y","qty":2}]})"},
    {"k_null", R"({"k":null})"},
    {"k_false", R"({"k":false})"},
    {"k_true", R"({"k":true})"},
    {"k_zero", R"({"k":0})"},
    {"k_str_null", R"({"k":"null"})"},
    {"wide", R"({"a":1,"b":2,"c":"three","d":{"e":[1,2]}})"},
    {"other", R"({"other":1})"},
    {"cafe", R"({"name":"caf\u00e9"})"},
    {"word", R"({"word":"Hello"})"},
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Order, timestamps, cursor and versions

TEST_CASE("query results come in ascending sequence order", "[query]") {
    Store store = make_store();
    // Evens and odds interleave; each of two filters matches one of them.
    for (int i = 1; i <= 60; ++i)
        (void)store.append(
            {event(i % 2 ? "odd" : "even", numbered("i", i)), event("pad", numbered("i", i))});
    QueryResult all = store.query({});
    REQUIRE(all.event_records.size() == 120);
    CHECK(sequence_numbers(all.event_records) == range(1, 120));

    QueryResult both = store.query(query_of({types({"odd"}), types({"even"})}));
    Seqs seqs = sequence_numbers(both.event_records);
    REQUIRE(seqs.size() == 60);
    CHECK(std::is_sorted(seqs.begin(), seqs.end()));
    CHECK(std::adjacent_find(seqs.begin(), seqs.end()) == seqs.end());
    // The facts of filter 2 ("even") come before later facts of filter 1 ("odd").
    CHECK(both.event_records[0].event_type == "odd");
    CHECK(both.event_records[1].event_type == "even");
    CHECK(both.event_records[2].event_type == "odd");
}

TEST_CASE("query returns each fact as it was appended", "[query]") {
    Store store = make_store();
    (void)store.append({event("opened", R"({"account":"a","n":1})"), event("closed", "{}")});
    (void)store.append({event("opened", R"({"account":"b","tags":["x"]})")});
    QueryResult result = store.query({});
    REQUIRE(result.event_records.size() == 3);
    CHECK(result.event_records[0].sequence_number == 1);
    CHECK(result.event_records[0].event_type == "opened");
    CHECK(result.event_records[0].payload == R"({"account":"a","n":1})");
    CHECK(result.event_records[1].event_type == "closed");
    CHECK(result.event_records[1].payload == "{}");
    CHECK(result.event_records[2].payload == R"({"account":"b","tags":["x"]})");
}

TEST_CASE("occurred_at is the recorded UTC time of the append", "[query]") {
    using namespace std::chrono;
    Store store = make_store();
    const auto before = system_clock::now();
    (void)store.append({event("a"), event("b")});
    const auto after = system_clock::now();
    std::this_thread::sleep_for(milliseconds(30));
    (void)store.append({event("c")});
    const auto after_second = system_clock::now();

    QueryResult result = store.query({});
    REQUIRE(result.event_records.size() == 3);
    const Timestamp t1 = result.event_records[0].occurred_at;
    const Timestamp t3 = result.event_records[2].occurred_at;
    CHECK(t1.time_since_epoch().count() != 0);
    // Close to now on the UTC system clock (a local-time or zero timestamp is hours off).
    // A few seconds of slack allow for a database server's clock.
    const auto slack = seconds(5);
    CHECK(t1 >= time_point_cast<microseconds>(before) - slack);
    CHECK(t1 <= time_point_cast<microseconds>(after) + slack);
    CHECK(t3 >= time_point_cast<microseconds>(before) - slack);
    CHECK(t3 <= time_point_cast<microseconds>(after_second) + slack);
    // Resolution finer than seconds: the second append, 30 ms later, is recorded later.
    CHECK(t3 - t1 >= milliseconds(20));
    CHECK(t3 - t1 < seconds(5));
}

TEST_CASE("min_sequence_number is an exclusive cursor that narrows the rows only", "[query]") {
    Store store = make_store();
    for (int i = 1; i <= 10; ++i)
        (void)store.append({event(i % 2 ? "a" : "b", numbered("i", i))});

    QueryResult after4 = store.query(EventQuery{std::nullopt, 4});
    CHECK(sequence_numbers(after4.event_records) == range(5, 10));
    CHECK(after4.last_returned_sequence_number == 10u);
    CHECK(after4.current_context_version == 10u);

    // Type "a" has 1,3,5,7,9; after 5: 7 and 9; the version still counts every match.
    QueryResult a_after5 = store.query(query_of({types({"a"})}, 5));
    CHECK(sequence_numbers(a_after5.event_records) == Seqs{7, 9});
    CHECK(a_after5.last_returned_sequence_number == 9u);
    CHECK(a_after5.current_context_version == 9u);

    // The cursor is exclusive: after 9 nothing of "a" remains, after 8 only 9.
    CHECK(seqs_of(store, query_of({types({"a"})}, 8)) == Seqs{9});
    CHECK(seqs_of(store, query_of({types({"b"})}, 0)) == Seqs{2, 4, 6, 8, 10});
}

TEST_CASE(
    "when the cursor filters out every match, last_returned is none and the version is still the "
    "highest match",
    "[query]") {
    Store store = make_store();
    (void)store.append({event("a", numbered("k", 1))});              // 1
    (void)store.append({event("b"), event("a", numbered("k", 2))});  // 2, 3
    for (int i = 0; i < 20; ++i)
        (void)store.append({event("b")});  // 4..23

    QueryResult result = store.query(query_of({types({"a"})}, 3));
    CHECK(result.event_records.empty());
    CHECK(result.last_returned_sequence_number == std::nullopt);
    CHECK(result.current_context_version == 3u);

    QueryResult far = store.query(query_of({predicates({R"({"k":1})"})}, 20));
    CHECK(far.event_records.empty());
    CHECK(far.last_returned_sequence_number == std::nullopt);
    CHECK(far.current_context_version == 1u);

    QueryResult past_head = store.query(query_of({types({"a"})}, 1000));
    CHECK(past_head.event_records.empty());
    CHECK(past_head.last_returned_sequence_number == std::nullopt);
    CHECK(past_head.current_context_version == 3u);
}

TEST_CASE("a query that matches nothing reports no last returned fact and no version", "[query]") {
    Store store = make_store();
    QueryResult empty_log = store.query({});
    CHECK(empty_log.event_records.empty());
    CHECK(empty_log.last_returned_sequence_number == std::nullopt);
    CHECK(empty_log.current_context_version == std::nullopt);

    for (int i = 0; i < 30; ++i)
        (void)store.append({event("a", numbered("k", i))});
    for (const EventQuery& q :
         {query_of({types({"missing"})}), query_of({types({"missing"})}, 0),
          query_of({types({"missing"})}, 29), query_of({predicates({R"({"k":999})"})}),
          query_of({predicates({R"({"nokey":1})"})}, 10),
          query_of({EventFilter{std::vector<std::string>{"a"},
                                std::vector<std::string>{R"({"k":"1"})"}}})}) {
        INFO(to_json(q));
        QueryResult r = store.query(q);
        CHECK(r.event_records.empty());
        CHECK(r.last_returned_sequence_number == std::nullopt);
        CHECK(r.current_context_version == std::nullopt);
    }
}

TEST_CASE("missing or empty filters mean every fact", "[query]") {
    Store store = make_store();
    for (int i = 0; i < 12; ++i)
        (void)store.append({event(i % 3 ? "x" : "y", numbered("i", i)), event("z", "[1,2]")});
    const Seqs every = range(1, 24);
    check_query(store, EventQuery{}, every);
    check_query(store, EventQuery{std::vector<EventFilter>{}, std::nullopt}, every);
    // A filter with both parts missing is unconstrained.
    check_query(store, query_of({EventFilter{}}), every);
    // A filter with only a missing type part is constrained by its payload part alone.
    check_query(store,
                query_of({EventFilter{std::nullopt, std::vector<std::string>{R"({"i":3})"}}}),
                Seqs{7});
}

// ---------------------------------------------------------------------------------------------
// Payload predicates

TEST_CASE("a payload predicate matches equal scalars", "[query]") {
    PredicateCatalog c(kCatalog);
    c.check(R"({"word":"Hello"})", {"word"});
    c.check(R"({"word":"hello"})", {});
    c.check(R"({"n":-7})", {"neg"});
    c.check(R"({"n":7})", {});
    c.check(R"({"other":1})", {"other"});
    c.check(R"({"n":1.5})", {"dbl15"});
}

TEST_CASE("numbers match by numeric value: 1 matches 1.0 and 1.0 matches 1", "[query]") {
    PredicateCatalog c(kCatalog);
    c.check(R"({"n":1})", {"int1", "dbl1"});
    c.check(R"({"n":1.0})", {"int1", "dbl1"});
    c.check(R"({"n":1.00})", {"int1", "dbl1"});
    c.check(R"({"n":100})", {"exp100", "int100"});
    c.check(R"({"n":1e2})", {"exp100", "int100"});
    c.check(R"({"n":100.0})", {"exp100", "int100"});
    c.check(R"({"n":-7.0})", {"neg"});
    c.check(R"({"n":1.25})", {});
    c.check(R"({"xs":[2.0]})", {"xs"});
    c.check(R"({"xs":[1]})", {"xs"});
}

TEST_CASE("a string never equals a number", "[query]") {
    PredicateCatalog c(kCatalog);
    c.check(R"({"n":"1"})", {"str1"});
    c.check(R"({"n":"1.0"})", {});
    c.check(R"({"n":"100"})", {});
    c.check(R"({"k":"null"})", {"k_str_null"});
    c.check(R"({"xs":["1"]})", {});
}

TEST_CASE("strings compare by value, whatever their escaping", "[query]") {
    PredicateCatalog c(kCatalog);
    c.check("{\"name\":\"caf\xc3\xa9\"}", {"cafe"});
    c.check(R"({"name":"caf\u00e9"})", {"cafe"});
    c.check(R"({"name":"cafe"})", {});
    c.check(R"({"word":"H\u0065llo"})", {"word"});
}

TEST_CASE("nested objects match as recursive subsets", "[query]") {
    PredicateCatalog c(kCatalog);
    c.check(R"({"meta":{"region":"eu"}})", {"meta_eu"});
    c.check(R"({"meta":{"region":"eu","level":2}})", {"meta_eu"});
    c.check(R"({"meta":{"deep":{"x":true}}})", {"meta_eu"});
    c.check(R"({"meta":{"level":2}})", {"meta_eu", "meta_us"});
    c.check(R"({"meta":{"level":2.0}})", {"meta_eu", "meta_us"});
    c.check(R"({"meta":{}})", {"meta_eu", "meta_us"});  // an object, not the string
    c.check(R"({"meta":{"region":"eu","level":3}})", {});
    c.check(R"({"meta":{"deep":{"x":false}}})", {});
    c.check(R"({"meta":{"missing":null}})", {});
    c.check(R"({"meta":"eu"})", {"meta_str"});
    c.check(R"({"d":{"e":[2]}})", {"wide"});
}

TEST_CASE(
    "arrays of scalars match when every predicate element is in the payload array, in any order",
    "[query]") {
    PredicateCatalog c(kCatalog);
    c.check(R"({"tags":["a"]})", {"tags"});  // not the string "a"
    c.check(R"({"tags":["c","a"]})", {"tags"});
    c.check(R"({"tags":["b","c","a"]})", {"tags"});
    c.check(R"({"tags":["a","d"]})", {});
    c.check(R"({"tags":["d"]})", {});
    c.check(R"({"tags":"a"})", {"tags_str"});
    c.check(R"({"tags":[]})", {"tags", "tags_nested"});  // any array
    c.check(R"({"tags":[["a"]]})", {"tags_nested"});
    c.check(R"({"tags":["z"]})", {"tags_nested"});
    c.check(R"({"xs":[3,1]})", {"xs"});
    c.check(R"({"xs":[4]})", {});
}

TEST_CASE("arrays of objects match element by element, also on a non-first element", "[query]") {
    PredicateCatalog c(kCatalog);
    c.check(R"({"items":[{"sku":"y"}]})", {"items"});
    c.check(R"({"items":[{"sku":"y","qty":2}]})", {"items"});
    c.check(R"({"items":[{"qty":2.0}]})", {"items"});
    c.check(R"({"items":[{"sku":"y"},{"sku":"x"}]})", {"items"});
    c.check(R"({"items":[{}]})", {"items"});
    // Both properties must come from one element.
    c.check(R"({"items":[{"sku":"y","qty":1}]})", {});
    c.check(R"({"items":[{"sku":"z"}]})", {});
    c.check(R"({"items":{"sku":"y"}})", {});
}

TEST_CASE("extra payload keys are allowed", "[query]") {
    PredicateCatalog c(kCatalog);
    c.check(R"({"a":1})", {"wide"});
    c.check(R"({"a":1,"c":"three"})", {"wide"});
    c.check(R"({"c":"three","b":2,"a":1})", {"wide"});
    c.check(R"({"a":1,"b":3})", {});
}

TEST_CASE("a predicate key missing from the payload does not match", "[query]") {
    PredicateCatalog c(kCatalog);
    c.check(R"({"a":1,"z":1})", {});
    c.check(R"({"absent":1})", {});
    c.check(R"({"absent":null})", {});
    c.check(R"({"absent":{}})", {});
    c.check(R"({"absent":[]})", {});
}

TEST_CASE("null and booleans match only themselves", "[query]") {
    PredicateCatalog c(kCatalog);
    c.check(R"({"k":null})", {"k_null"});
    c.check(R"({"k":false})", {"k_false"});
    c.check(R"({"k":true})", {"k_true"});
    c.check(R"({"k":0})", {"k_zero"});
    c.check(R"({"meta":{"deep":{"x":true}},"meta2":null})", {});
}

TEST_CASE("a predicate matches on any top-level key of a payload with many keys", "[query]") {
    Store store = make_store();
    // One payload with 300 top-level scalars, among other facts that share some of its keys.
    std::string wide = "{";
    for (int k = 0; k < 300; ++k) {
        if (k) wide += ',';
        wide += "\"k" + std::to_string(k) + "\":" + std::to_string(k);
    }
    wide += '}';
    for (int i = 0; i < 40; ++i)
        (void)store.append({event("narrow", R"({"k0":0,"k299":-1,"k260":-1})")});
    const SequenceNumber at = store.append({event("wide", wide)}).first_sequence_number;
    for (int i = 0; i < 40; ++i)
        (void)store.append({event("narrow", R"({"k299":-1})")});

    for (const std::string& predicate :
         {std::string(R"({"k150":150})"), std::string(R"({"k260":260})"),
          std::string(R"({"k299":299})"), std::string(R"({"k1":1,"k298":298})")}) {
        INFO("predicate " << predicate);
        check_query(store, query_of({predicates({predicate})}), Seqs{at});
    }
    Seqs narrow_and_wide = range(1, 40);
    narrow_and_wide.push_back(at);
    check_query(store, query_of({predicates({R"({"k0":0})"})}), narrow_and_wide);
}

// ---------------------------------------------------------------------------------------------
// Combining filters, types and predicates

TEST_CASE("filters are ORed and a fact matching several filters is returned once", "[query]") {
    Store store = make_store();
    (void)store.append({event("a", numbered("k", 1))});  // 1
    (void)store.append({event("b", numbered("k", 2))});  // 2
    (void)store.append({event("c", numbered("k", 1))});  // 3
    (void)store.append({event("a", numbered("k", 2))});  // 4
    check_query(store, query_of({types({"a"}), predicates({R"({"k":2})"})}), Seqs{1, 2, 4});
    check_query(store, query_of({types({"c"}), types({"a"})}), Seqs{1, 3, 4});
    check_query(store, query_of({types({"a"}), types({"a"}), predicates({R"({"k":1})"})}),
                Seqs{1, 3, 4});
}

TEST_CASE("event types inside one filter are ORed", "[query]") {
    Store store = make_store();
    for (int i = 0; i < 30; ++i)
        (void)store.append({event(std::string(1, char('a' + i % 5)))});
    Seqs a_or_c;
    for (SequenceNumber s = 1; s <= 30; ++s)
        if ((s - 1) % 5 == 0 || (s - 1) % 5 == 2) a_or_c.push_back(s);
    check_query(store, query_of({types({"a", "c"})}), a_or_c);
    check_query(store, query_of({types({"c", "a", "nope"})}), a_or_c);
}

TEST_CASE("payload predicates inside one filter are ORed", "[query]") {
    Store store = make_store();
    for (int i = 0; i < 30; ++i)
        (void)store.append({event("t", numbered("k", i % 6))});
    Seqs k1_or_k4;
    for (SequenceNumber s = 1; s <= 30; ++s)
        if ((s - 1) % 6 == 1 || (s - 1) % 6 == 4) k1_or_k4.push_back(s);
    check_query(store, query_of({predicates({R"({"k":1})", R"({"k":4})"})}), k1_or_k4);
    check_query(store, query_of({predicates({R"({"k":4})", R"({"k":99})", R"({"k":1.0})"})}),
                k1_or_k4);
}

TEST_CASE("the type part and the payload part of a filter are ANDed", "[query]") {
    Store store = make_store();
    Seqs expected;
    for (int i = 0; i < 60; ++i) {
        const std::string type = i % 3 == 0 ? "deposited" : (i % 3 == 1 ? "withdrawn" : "opened");
        const int account = i % 4;
        SequenceNumber s =
            store.append({event(type, numbered("account", account))}).first_sequence_number;
        if ((type == "deposited" || type == "opened") && (account == 1 || account == 2))
            expected.push_back(s);
    }
    check_query(
        store,
        query_of({EventFilter{std::vector<std::string>{"deposited", "opened"},
                              std::vector<std::string>{R"({"account":1})", R"({"account":2})"}}}),
        expected);
}

TEST_CASE("an explicitly empty event_types list matches nothing", "[query]") {
    Store store = make_store();
    for (int i = 0; i < 10; ++i)
        (void)store.append({event("a", numbered("k", i))});
    check_query(store, query_of({types({})}), Seqs{});
    check_query(
        store,
        query_of({EventFilter{std::vector<std::string>{}, std::vector<std::string>{R"({"k":1})"}}}),
        Seqs{});
    // It does not affect other filters of the query.
    check_query(store, query_of({types({}), predicates({R"({"k":3})"})}), Seqs{4});

    SECTION("and as an append_if context its version is none") {
        AppendIfResult r = store.append_if({event("a")}, query_of({types({})}), std::nullopt);
        REQUIRE(r.committed());
        CHECK(r.append_result()->first_sequence_number == 11);
        AppendIfResult conflict = store.append_if({event("a")}, query_of({types({})}), 11);
        REQUIRE(conflict.conflict() != nullptr);
        CHECK(*conflict.conflict() == ConditionalAppendConflict{11, std::nullopt});
        CHECK(store.head() == 11);
    }
}

TEST_CASE("an explicitly empty payload_predicates list matches nothing", "[query]") {
    Store store = make_store();
    for (int i = 0; i < 10; ++i)
        (void)store.append({event("a", numbered("k", i))});
    check_query(store, query_of({predicates({})}), Seqs{});
    check_query(store,
                query_of({EventFilter{std::vector<std::string>{"a"}, std::vector<std::string>{}}}),
                Seqs{});
    check_query(store, query_of({predicates({}), types({"a"})}), range(1, 10));
}

// ---------------------------------------------------------------------------------------------
// Many facts: an index-based implementation and a scan must agree

namespace {

struct Generated {
    SequenceNumber seq;
    std::string type;
    int account;
    int amount;
    bool flagged;
    std::vector<std::string> tags;
    std::string region;
};

struct Workload {
    Store store = make_store();
    std::vector<Generated> facts;

    Workload() {
        std::mt19937 rng(20240611);
        const std::vector<std::string> kinds{"opened", "deposited", "withdrawn", "closed",
                                             "audited"};
        const std::vector<std::string> all_tags{"red", "green", "blue", "gold"};
        SequenceNumber next = 1;
        while (facts.size() < 420) {
            const int batch_size = 1 + int(rng() % 4);
            std::vector<NewEvent> batch;
            for (int i = 0; i < batch_size; ++i) {
                Generated g;
                g.seq = next++;
                // Skewed: "deposited" is common, "closed" rare; account 0 common, 9 rare.
                const unsigned t = rng() % 20;
                g.type = t < 9    ? kinds[1]
                         : t < 14 ? kinds[2]
                         : t < 17 ? kinds[0]
                         : t < 19 ? kinds[4]
                                  : kinds[3];
                const unsigned a = rng() % 40;
                g.account = a < 16 ? 0 : a < 39 ? int(1 + a % 8) : 9;
                g.amount = int(rng() % 50);
                g.flagged = rng() % 7 == 0;
                for (const auto& tag : all_tags)
                    if (rng() % 3 == 0) g.tags.push_back(tag);
                std::shuffle(g.tags.begin(), g.tags.end(), rng);
                g.region = rng() % 2 ? "eu" : "us";
                // Amounts are sometimes written as doubles; they are the same numbers.
                std::string amount = std::to_string(g.amount) + (rng() % 3 == 0 ? ".0" : "");
                std::string payload = "{\"account\":\"acc-" + std::to_string(g.account) +
                                      "\",\"amount\":" + amount +
                                      ",\"flagged\":" + (g.flagged ? "true" : "false") +
                                      ",\"seq_hint\":" + std::to_string(g.seq) + ",\"tags\":[";
                for (std::size_t k = 0; k < g.tags.size(); ++k)
                    payload += (k ? ",\"" : "\"") + g.tags[k] + "\"";
                payload += "],\"meta\":{\"region\":\"" + g.region + "\"}}";
                batch.push_back(event(g.type, payload));
                facts.push_back(g);
            }
            AppendResult r = store.append(std::move(batch));
            REQUIRE(r.first_sequence_number == facts[facts.size() - batch_size].seq);
        }
    }

    Seqs where(const std::function<bool(const Generated&)>& keep) const {
        Seqs out;
        for (const auto& g : facts)
            if (keep(g)) out.push_back(g.seq);
        return out;
    }
};

bool has_tag(const Generated& g, const std::string& tag) {
    return std::find(g.tags.begin(), g.tags.end(), tag) != g.tags.end();
}

}  // namespace

TEST_CASE("queries over hundreds of facts return exactly the matching facts at every cursor",
          "[query]") {
    Workload w;
    REQUIRE(w.store.head() == w.facts.size());
    const Store& s = w.store;

    SECTION("by event type") {
        check_query(s, query_of({types({"deposited"})}),
                    w.where([](auto& g) { return g.type == "deposited"; }));
        check_query(s, query_of({types({"closed"})}),
                    w.where([](auto& g) { return g.type == "closed"; }));
        check_query(s, query_of({types({"closed", "audited"})}),
                    w.where([](auto& g) { return g.type == "closed" || g.type == "audited"; }));
    }
    SECTION("by a common and a rare payload value") {
        check_query(s, query_of({predicates({R"({"account":"acc-0"})"})}),
                    w.where([](auto& g) { return g.account == 0; }));
        check_query(s, query_of({predicates({R"({"account":"acc-9"})"})}),
                    w.where([](auto& g) { return g.account == 9; }));
        check_query(s, query_of({predicates({R"({"flagged":true})"})}),
                    w.where([](auto& g) { return g.flagged; }));
    }
    SECTION("by several keys of one predicate") {
        check_query(s, query_of({predicates({R"({"account":"acc-0","amount":7})"})}),
                    w.where([](auto& g) { return g.account == 0 && g.amount == 7; }));
        check_query(s, query_of({predicates({R"({"amount":12.0,"flagged":false})"})}),
                    w.where([](auto& g) { return g.amount == 12 && !g.flagged; }));
    }
    SECTION("by nested and array values") {
        check_query(s,
                    query_of({predicates({R"({"meta":{"region":"eu"},"tags":["gold","red"]})"})}),
                    w.where([](auto& g) {
                        return g.region == "eu" && has_tag(g, "gold") && has_tag(g, "red");
                    }));
        check_query(s, query_of({predicates({R"({"tags":["blue"],"account":"acc-3"})"})}),
                    w.where([](auto& g) { return has_tag(g, "blue") && g.account == 3; }));
    }
    SECTION("by type and payload together, and across filters") {
        check_query(s,
                    query_of({EventFilter{std::vector<std::string>{"withdrawn"},
                                          std::vector<std::string>{R"({"account":"acc-2"})",
                                                                   R"({"account":"acc-9"})"}},
                              EventFilter{std::vector<std::string>{"closed"}, std::nullopt}}),
                    w.where([](auto& g) {
                        return (g.type == "withdrawn" && (g.account == 2 || g.account == 9)) ||
                               g.type == "closed";
                    }));
        check_query(
            s,
            query_of({EventFilter{std::vector<std::string>{"deposited", "opened"},
                                  std::vector<std::string>{R"({"meta":{"region":"us"}})"}},
                      predicates({R"({"amount":49})"})}),
            w.where([](auto& g) {
                return ((g.type == "deposited" || g.type == "opened") && g.region == "us") ||
                       g.amount == 49;
            }));
    }
    SECTION("values no fact has") {
        check_query(s, query_of({predicates({R"({"account":"acc-10"})"})}), Seqs{});
        check_query(s,
                    query_of({EventFilter{std::vector<std::string>{"closed"},
                                          std::vector<std::string>{R"({"amount":50})"}}}),
                    Seqs{});
    }
    SECTION("every fact, checked field by field") {
        QueryResult all = s.query({});
        REQUIRE(all.event_records.size() == w.facts.size());
        for (std::size_t i = 0; i < w.facts.size(); ++i) {
            CHECK(all.event_records[i].sequence_number == w.facts[i].seq);
            CHECK(all.event_records[i].event_type == w.facts[i].type);
            CHECK_THAT(all.event_records[i].payload,
                       Catch::Contains("\"seq_hint\":" + std::to_string(w.facts[i].seq) + ","));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Invalid queries and the JSON form of a query

TEST_CASE("a malformed payload predicate is invalid input naming the filter and the predicate",
          "[query]") {
    Store store = make_store();
    (void)store.append({event("a", numbered("k", 1))});
    const EventQuery bad =
        query_of({types({"a"}), predicates({R"({"k":1})", R"({"k":2})", "{\"k\":"})});
    try {
        (void)store.query(bad);
        FAIL("expected InvalidInput");
    } catch (const InvalidInput& e) {
        CHECK(e.code() == ErrorCode::invalid_json);
        CHECK_THAT(e.what(), Catch::Contains("filter 1") && Catch::Contains("predicate 2"));
    }
    for (const char* text : {"", "{k:1}", "{\"k\":1} trailing", "{\"k\":1", "nul"}) {
        INFO("predicate text '" << text << "'");
        try {
            (void)store.query(query_of({predicates({text})}));
            FAIL("expected InvalidInput");
        } catch (const InvalidInput& e) {
            CHECK(e.code() == ErrorCode::invalid_json);
        }
    }
    CHECK(store.head() == 1);
}

namespace {

void check_same_query(const EventQuery& a, const EventQuery& b) {
    CHECK(a.min_sequence_number == b.min_sequence_number);
    REQUIRE(a.filters.has_value() == b.filters.has_value());
    if (!a.filters) return;
    REQUIRE(a.filters->size() == b.filters->size());
    for (std::size_t i = 0; i < a.filters->size(); ++i) {
        INFO("filter " << i);
        CHECK((*a.filters)[i].event_types == (*b.filters)[i].event_types);
        CHECK((*a.filters)[i].payload_predicates == (*b.filters)[i].payload_predicates);
    }
}

}  // namespace

TEST_CASE("parse_event_query reads the JSON form of a query and to_json writes it back",
          "[query]") {
    const EventQuery parsed = parse_event_query(
        R"({"filters":[{"event_types":["opened","closed"],"payload_predicates":[{"account":"a","n":1},{"tags":["x"]}]},)"
        R"({"event_types":[]},{"payload_predicates":[]},{}],"min_sequence_number":42})");
    REQUIRE(parsed.filters.has_value());
    REQUIRE(parsed.filters->size() == 4);
    const EventFilter& f0 = (*parsed.filters)[0];
    CHECK(f0.event_types == std::vector<std::string>{"opened", "closed"});
    REQUIRE(f0.payload_predicates.has_value());
    REQUIRE(f0.payload_predicates->size() == 2);
    CHECK(parse_event_query("{}").filters == std::nullopt);
    // Explicitly empty lists stay explicit; missing parts stay missing.
    CHECK((*parsed.filters)[1].event_types == std::vector<std::string>{});
    CHECK((*parsed.filters)[1].payload_predicates == std::nullopt);
    CHECK((*parsed.filters)[2].event_types == std::nullopt);
    CHECK((*parsed.filters)[2].payload_predicates == std::vector<std::string>{});
    CHECK((*parsed.filters)[3].event_types == std::nullopt);
    CHECK((*parsed.filters)[3].payload_predicates == std::nullopt);
    CHECK(parsed.min_sequence_number == 42u);

    // Round trip: text -> query -> text -> query gives the same query, and the same text.
    const std::string text = to_json(parsed);
    const EventQuery again = parse_event_query(text);
    check_same_query(parsed, again);
    CHECK(to_json(again) == text);

    // A query built in code survives the round trip too, including characters that need escaping.
    EventQuery built = query_of({EventFilter{std::vector<std::string>{"quote\"d", "back\\slash"},
                                             std::vector<std::string>{R"({"s":"a\"b","n":[1,2]})"}},
                                 types({"plain"})},
                                7);
    check_same_query(built, parse_event_query(to_json(built)));
    check_same_query(EventQuery{}, parse_event_query(to_json(EventQuery{})));
}

TEST_CASE("a parsed query selects the same facts as the query it was written from", "[query]") {
    Store store = make_store();
    for (int i = 0; i < 40; ++i)
        (void)store.append({event(i % 2 ? "a" : "b", numbered("k", i % 5))});
    const EventQuery q =
        query_of({EventFilter{std::vector<std::string>{"a"},
                              std::vector<std::string>{R"({"k":1})", R"({"k":3.0})"}},
                  types({})},
                 10);
    const QueryResult direct = store.query(q);
    const QueryResult via_json = store.query(parse_event_query(to_json(q)));
    CHECK_FALSE(direct.event_records.empty());
    CHECK(direct.event_records == via_json.event_records);
    CHECK(direct.current_context_version == via_json.current_context_version);
    CHECK(direct.last_returned_sequence_number == via_json.last_returned_sequence_number);
}

TEST_CASE("parse_event_query rejects unknown fields and wrong shapes as invalid_query", "[query]") {
    for (const char* text : {
             R"({"filter":[]})",
             R"({"filters":[],"extra":1})",
             R"({"filters":[{"event_type":["a"]}]})",
             R"({"filters":[{"event_types":["a"],"predicates":[]}]})",
             R"({"filters":{"event_types":["a"]}})",
             R"({"filters":["a"]})",
             R"({"filters":[{"event_types":"a"}]})",
             R"({"filters":[{"event_types":[1]}]})",
             R"({"filters":[{"payload_predicates":{"k":1}}]})",
             R"({"min_sequence_number":-1})",
             R"({"min_sequence_number":"3"})",
             R"({"min_sequence_number":1.5})",
             R"([])",
             R"("filters")",
         }) {
        INFO("query text " << text);
        try {
            (void)parse_event_query(text);
            FAIL("expected InvalidInput");
        } catch (const InvalidInput& e) {
            CHECK(e.code() == ErrorCode::invalid_query);
        }
    }
    try {
        (void)parse_event_query(R"({"filters":[{"events_types":["a"]}]})");
        FAIL("expected InvalidInput");
    } catch (const InvalidInput& e) {
        CHECK(e.code() == ErrorCode::invalid_query);
        CHECK_THAT(e.what(), Catch::Contains("events_types"));
    }
    for (const char* text : {R"({"filters":[)", "", "{filters:[]}"}) {
        INFO("query text " << text);
        try {
            (void)parse_event_query(text);
            FAIL("expected InvalidInput");
        } catch (const InvalidInput& e) {
            CHECK((e.code() == ErrorCode::invalid_json || e.code() == ErrorCode::invalid_query));
        }
    }
}
