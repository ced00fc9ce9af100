// PostgreSQL-only tests: bootstrap, schema ownership, persistence, password hygiene, several
// store objects (as several processes would) on one database, and connection loss.
// The server is FACTSTR_TEST_POSTGRES_URL (see support/postgres_env.hpp).
#include <libpq-fe.h>
#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <thread>

#include "../support/helpers.hpp"
#include "../support/postgres_env.hpp"
#include "factstr/internal/backend.hpp"
#include "raw.hpp"

using namespace factstr;
using namespace factstr::testing;

namespace {

const bool server_available = require_postgres_server("postgres_tests");

template <class F>
std::string error_message_of(F&& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("bootstrap creates a missing database, then opens it; a second bootstrap reuses it",
          "[postgres]") {
    (void)server_available;
    const std::string name = fresh_database_name();
    Raw server;
    CHECK(server.run("SELECT datname FROM pg_database WHERE datname = '" + name + "'").empty());
    {
        Store store = bootstrap(postgres_server_url(), name);
        CHECK(store.append({event("a")}).first_sequence_number == 1);
        CHECK(store.describe().find(name) != std::string::npos);
    }
    CHECK(server.run("SELECT datname FROM pg_database WHERE datname = '" + name + "'").size() == 1);
    CHECK(server.run("SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = '" +
                     name + "'") == std::vector<std::string>{"UTF8"});
    Store again = bootstrap(postgres_server_url(), name);
    CHECK(again.head() == 1);
    // Concurrent bootstraps of one new name all succeed.
    const std::string shared = fresh_database_name();
    std::vector<std::thread> threads;
    std::atomic<int> opened{0};
    for (int i = 0; i < 4; ++i)
        threads.emplace_back([&] {
            try {
                Store s = bootstrap(postgres_server_url(), shared);
                ++opened;
            } catch (const std::exception& e) {
                WARN(e.what());
            }
        });
    for (auto& t : threads)
        t.join();
    CHECK(opened == 4);
}

TEST_CASE("bootstrap refuses bad database names before sending any SQL", "[postgres]") {
    // A server that cannot be reached: a name check that connected first would fail with
    // connection_failure instead of invalid_argument.
    const std::string unreachable = "postgres://nobody@127.0.0.1:1/postgres";
    for (std::string name : std::vector<std::string>{
             "", "1abc", "a-b", "a b", "x\"; DROP DATABASE postgres; --", "caf\xc3\xa9", "a.b",
             std::string(64, 'a'), std::string("a\0b", 3)}) {
        INFO("name '" << name << "'");
        try {
            (void)bootstrap(unreachable, name);
            FAIL("accepted");
        } catch (const InvalidInput& e) {
            CHECK(e.code() == ErrorCode::invalid_argument);
        }
    }
    // Good names pass the check (and then fail to connect).
    try {
        (void)bootstrap(unreachable, "_Good_name_1");
        FAIL("connected to port 1?");
    } catch (const StoreError& e) {
        CHECK(e.code() == ErrorCode::connection_failure);
    }
}

TEST_CASE("facts, batch boundaries and cursors persist across a second store object",
          "[postgres]") {
    const std::string name = fresh_database_name();
    {
        Store store = bootstrap(postgres_server_url(), name);
        auto seen = std::make_shared<BatchRecorder>();
        Subscription s = store.stream_all_durable(DurableStream{"reader"}, [seen](const Batch& b) {
            seen->record(b);
            return b.front().sequence_number < 4;  // handles the first two batches only
        });
        (void)store.append({event("a", R"({"k":1})"), event("b", R"({"k":2})")});
        (void)store.append({event("c", R"({"k":3})")});
        (void)store.append({event("a", R"({"k":4})"), event("a", R"({"k":5})"), event("b")});
        REQUIRE(seen->wait_for_batches(3));
        REQUIRE(wait_for([&] { return cursor_position(store, "reader") == 3; }));
        REQUIRE(wait_for([&] { return !s.active(); }));
    }
    Store reopened = open(url_of(name));
    CHECK(reopened.head() == 6);
    const auto facts = all_facts(reopened);
    REQUIRE(facts.size() == 6);
    CHECK(facts[4].payload == R"({"k":5})");
    CHECK(cursor_position(reopened, "reader") == 3);
    auto replay = std::make_shared<BatchRecorder>();
    Subscription s = reopened.stream_all_durable(DurableStream{"reader"}, record_into(replay));
    CHECK(batch_sequence_numbers(replay->batches()) ==
          std::vector<std::vector<SequenceNumber>>{{4, 5, 6}});
    s.unsubscribe();
}

TEST_CASE("a database that holds another schema is refused and left untouched", "[postgres]") {
    SECTION("a foreign facts table") {
        const std::string name = fresh_database_name();
        Raw server;
        server.run("CREATE DATABASE " + name);
        {
            Raw db(name);
            db.run("CREATE TABLE facts (id int)");
            db.run("INSERT INTO facts VALUES (42)");
        }
        try {
            (void)bootstrap(postgres_server_url(), name);
            FAIL("opened");
        } catch (const StoreError& e) {
            CHECK(e.code() == ErrorCode::schema_mismatch);
        }
        Raw db(name);
        CHECK(db.run("SELECT id::text FROM facts") == std::vector<std::string>{"42"});
        CHECK(db.run("SELECT to_regclass('factstr_meta')::text") == std::vector<std::string>{""});
    }
    SECTION("another schema version") {
        const std::string name = fresh_database_name();
        { Store store = bootstrap(postgres_server_url(), name); }
        {
            Raw db(name);
            db.run("UPDATE factstr_meta SET value = '99' WHERE key = 'schema_version'");
        }
        try {
            (void)bootstrap(postgres_server_url(), name);
            FAIL("opened");
        } catch (const StoreError& e) {
            CHECK(e.code() == ErrorCode::schema_mismatch);
            CHECK(std::string(e.what()).find("99") != std::string::npos);
        }
    }
}

TEST_CASE("a password never appears in an error message or a description", "[postgres]") {
    const std::string secret = "Sup3rS3cretPassw0rd";
    const std::vector<std::string> urls{
        "postgres://someone:" + secret + "@127.0.0.1:1/facts",
        "postgresql://someone:" + secret + "@127.0.0.1:1/facts?connect_timeout=2",
        "host=127.0.0.1 port=1 user=someone password=" + secret + " dbname=facts",
        "host=127.0.0.1 port=1 user=someone password='" + secret + "' dbname=facts",
    };
    for (const std::string& url : urls) {
        INFO(url);
        std::string message = error_message_of([&] { (void)open(url); });
        CHECK_FALSE(message.empty());
        CHECK(message.find(secret) == std::string::npos);
        message = error_message_of([&] { (void)bootstrap(url, "facts"); });
        CHECK_FALSE(message.empty());
        CHECK(message.find(secret) == std::string::npos);
    }
    // Malformed strings with a password.
    for (const std::string& url : {"postgres://someone:" + secret + "@127.0.0.1:notaport/facts",
                                   "host=127.0.0.1 password=" + secret + " bogus_option=1"}) {
        INFO(url);
        const std::string message = error_message_of([&] { (void)open(url); });
        CHECK_FALSE(message.empty());
        CHECK(message.find(secret) == std::string::npos);
    }
    // A working store (trust authentication ignores the password) never shows it either.
    const std::string name = fresh_database_name();
    { Store store = bootstrap(postgres_server_url(), name); }
    Store store = open(url_of(name) + " password=" + secret);
    CHECK(store.describe().find(secret) == std::string::npos);
}

TEST_CASE("a stream on one store object receives what another store object commits", "[postgres]") {
    const std::string name = fresh_database_name();
    Store writer = bootstrap(postgres_server_url(), name);
    Store reader = open(url_of(name));
    auto seen = std::make_shared<BatchRecorder>();
    Subscription s = reader.stream_to(query_of({types({"wanted"})}), record_into(seen));
    for (int i = 0; i < 20; ++i)
        (void)writer.append({event(i % 2 ? "wanted" : "other"), event("wanted")});
    REQUIRE(seen->wait_until([](const auto& b) {
        std::size_t n = 0;
        for (const auto& batch : b)
            n += batch.size();
        return n == 30;
    }));
    std::vector<SequenceNumber> expected;
    for (const auto& r : all_facts(writer))
        if (r.event_type == "wanted") expected.push_back(r.sequence_number);
    CHECK(seen->all_sequence_numbers() == expected);
    s.unsubscribe();
}

TEST_CASE("append_ifs from several store objects on overlapping contexts are serialized",
          "[postgres][concurrency]") {
    const std::string name = fresh_database_name();
    { Store init = bootstrap(postgres_server_url(), name); }
    constexpr int kWriters = 6, kAttempts = 40;
    std::atomic<int> committed{0}, conflicts{0};
    std::vector<std::thread> threads;
    for (int w = 0; w < kWriters; ++w) {
        threads.emplace_back([&, w] {
            Store store = open(url_of(name));
            for (int i = 0; i < kAttempts; ++i) {
                const std::string account = "acc" + std::to_string((w + i) % 3);
                EventQuery context =
                    query_of({predicates({R"({"account":")" + account + R"("})"})});
                const auto version = store.query(context).current_context_version;
                auto result =
                    store.append_if({event("moved", R"({"account":")" + account + R"(","by":)" +
                                                        std::to_string(w) + "}")},
                                    context, version);
                if (result)
                    ++committed;
                else
                    ++conflicts;
            }
        });
    }
    for (auto& t : threads)
        t.join();
    Store store = open(url_of(name));
    const auto facts = all_facts(store);
    REQUIRE(facts.size() == static_cast<std::size_t>(committed.load()));
    CHECK(sequence_numbers(facts) == range(1, facts.size()));
    CHECK(committed + conflicts == kWriters * kAttempts);
    CHECK(committed >= 3);
}

TEST_CASE(
    "after the server drops every connection, appends work again and streams resume "
    "with no gap and no duplicate",
    "[postgres]") {
    const std::string name = fresh_database_name();
    Store store = bootstrap(postgres_server_url(), name);
    auto live = std::make_shared<BatchRecorder>();
    auto durable = std::make_shared<BatchRecorder>();
    Subscription s1 = store.stream_all(record_into(live));
    Subscription s2 = store.stream_all_durable(DurableStream{"d"}, record_into(durable));
    for (int i = 0; i < 5; ++i)
        (void)store.append({event("before"), event("before")});
    REQUIRE(live->wait_for_batches(5));
    REQUIRE(durable->wait_for_batches(5));
    (void)store.query(EventQuery{});  // a pooled reader connection exists

    Raw killer(name);
    const auto killed = killer.run(
        "SELECT pg_terminate_backend(pid)::text FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()");
    CHECK(killed.size() >= 2);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));

    // The writer's connection is gone, but no commit was in flight: the append goes through.
    for (int i = 0; i < 5; ++i)
        (void)store.append({event("after"), event("after")});
    CHECK(store.head() == 20);
    CHECK(sequence_numbers(all_facts(store)) == range(1, 20));
    REQUIRE(live->wait_for_batches(10));
    REQUIRE(durable->wait_for_batches(10));
    settle();
    CHECK(live->all_sequence_numbers() == range(1, 20));
    CHECK(durable->all_sequence_numbers() == range(1, 20));
    CHECK(s1.active());
    CHECK(s2.active());
    REQUIRE(wait_for([&] { return cursor_position(store, "d") == 20; }));

    // Killed again while idle: queries and cursors recover too.
    killer.run(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK(all_facts(store).size() == 20);
    CHECK(cursor_position(store, "d") == 20);
    (void)store.append({event("again")});
    REQUIRE(
        durable->wait_until([](const auto& b) { return b.back().back().sequence_number == 21; }));
    settle();
    CHECK(durable->all_sequence_numbers() == range(1, 21));
    s1.unsubscribe();
    s2.unsubscribe();
}

TEST_CASE("payload text is kept exactly, and predicates agree with jsonb containment",
          "[postgres]") {
    Store store = bootstrap(postgres_server_url(), fresh_database_name());
    (void)store.append({event("t", R"({"b":1,"a":2.50,"a2":1e2})"),
                        event("t", R"({"s":"nul\u0000here","n":1})"),
                        event("t", R"({"s":"x","n":1.0,"big":12345678901234567890})")});
    const auto facts = all_facts(store);
    REQUIRE(facts.size() == 3);
    CHECK(facts[0].payload == R"({"b":1,"a":2.50,"a2":1e2})");
    CHECK(facts[1].payload == R"({"s":"nul\u0000here","n":1})");
    auto seqs = [&](const std::string& predicate) {
        return sequence_numbers(store.query(query_of({predicates({predicate})})).event_records);
    };
    CHECK(seqs(R"({"n":1})") == std::vector<SequenceNumber>{2, 3});
    CHECK(seqs(R"({"n":1.0})") == std::vector<SequenceNumber>{2, 3});
    CHECK(seqs(R"({"s":"nul\u0000here"})") == std::vector<SequenceNumber>{2});
    CHECK(seqs(R"({"s":"nul\u0001here"})").empty());
    CHECK(seqs(R"({"a2":100})") == std::vector<SequenceNumber>{1});
    CHECK(seqs(R"({"a":2.5})") == std::vector<SequenceNumber>{1});
    CHECK(seqs(R"({"big":12345678901234567890})") == std::vector<SequenceNumber>{3});
}

TEST_CASE("append_if decides by the shared matcher also where SQL containment is coarser",
          "[postgres]") {
    // A single append_if whose context SQL selects exactly is checked and inserted by one
    // statement; where containment would select more than the matcher (a nested value, a
    // fraction, U+0000 folded into U+0001) the check reads the candidates and verifies them.
    // Each case: fact 1 is a candidate for the containment but no match, so the context's
    // version is none. An expected version of 1 is a conflict; none appends.
    const std::vector<std::pair<std::string, std::string>> cases = {
        {R"({"meta":{"region":"us"},"x":1})", R"({"meta":{"region":"eu"},"x":1})"},
        {R"({"n":2.5,"x":1})", R"({"n":1.5,"x":1})"},
        {R"({"s":"a\u0000"})", R"({"s":"a\u0001"})"},
        {R"({"acct":"A","cur":"EUR"})", R"({"acct":"A","acct":"B","cur":"EUR"})"},
    };
    for (const auto& [payload, predicate] : cases) {
        INFO("payload " << payload << ", predicate " << predicate);
        Store store = bootstrap(postgres_server_url(), fresh_database_name());
        (void)store.append({event("t", payload)});
        const EventQuery context = query_of({predicates({predicate})});
        REQUIRE(!store.query(context).current_context_version);
        auto stale = store.append_if({event("t", R"({"y":1})")}, context, SequenceNumber{1});
        REQUIRE(stale.conflict());
        CHECK(stale.conflict()->expected_context_version == SequenceNumber{1});
        CHECK(!stale.conflict()->actual_context_version);
        CHECK(store.head() == 1);
        CHECK(store.append_if({event("t", R"({"y":2})")}, context, std::nullopt).append_result());
        CHECK(store.head() == 2);
    }
    // Exact contexts (types, top-level scalars): the same answers from the one-statement check.
    Store store = bootstrap(postgres_server_url(), fresh_database_name());
    (void)store.append(
        {event("opened", R"({"account":"a","n":1})"), event("opened", R"({"account":"b","n":1})")});
    const EventQuery by_account =
        query_of({EventFilter{std::vector<std::string>{"opened", "paid"},
                              std::vector<std::string>{R"({"account":"a"})"}}});
    auto stale = store.append_if({event("paid", R"({"account":"a"})")}, by_account, std::nullopt);
    REQUIRE(stale.conflict());
    CHECK(stale.conflict()->actual_context_version == SequenceNumber{1});
    auto ok = store.append_if({event("paid", R"({"account":"a"})")}, by_account, SequenceNumber{1});
    REQUIRE(ok.append_result());
    CHECK(ok.append_result()->first_sequence_number == 3);
    auto again =
        store.append_if({event("paid", R"({"account":"a"})")}, by_account, SequenceNumber{1});
    REQUIRE(again.conflict());
    CHECK(again.conflict()->actual_context_version == SequenceNumber{3});
    const EventQuery by_type = query_of({types({"closed"})});
    CHECK(store.append_if({event("closed", "{}")}, by_type, std::nullopt).append_result());
    CHECK(store.append_if({event("closed", "{}")}, by_type, std::nullopt).conflict());
    CHECK(store.append_if({event("x", "{}")}, EventQuery{}, SequenceNumber{3}).conflict());
    CHECK(store.append_if({event("x", "{}")}, EventQuery{}, SequenceNumber{4}).append_result());
    CHECK(store.head() == 5);
}

// The port's declared capability: PostgreSQL decides a lone append_if on event types and
// top-level scalars inside its INSERT statement. Its view of the context version must be the
// shared evaluation's, on random facts and queries — and append_if must agree with both.
TEST_CASE("the in-statement append_if decision equals the shared evaluation on random facts",
          "[postgres][differential]") {
    (void)server_available;
    Store store = bootstrap(postgres_server_url(), fresh_database_name());
    std::mt19937 random(20261203);
    auto pick = [&](int n) { return static_cast<int>(random() % static_cast<unsigned>(n)); };
    const std::vector<std::string> type_names{"Opened", "Deposited", "Closed"};
    auto scalar = [&]() -> std::string {
        switch (pick(5)) {
            case 0:
                return std::to_string(pick(4));
            case 1:
                return "\"s" + std::to_string(pick(3)) + "\"";
            case 2:
                return pick(2) ? "true" : "false";
            case 3:
                return "null";
            default:
                return std::to_string(pick(3)) + ".0";
        }
    };
    auto payload = [&] {
        std::string out = "{";
        for (const char* key : {"a", "b", "c"}) {
            if (pick(3) == 0) continue;
            if (out.size() > 1) out += ',';
            out += std::string("\"") + key + "\":" + scalar();
        }
        if (pick(4) == 0) out += std::string(out.size() > 1 ? "," : "") + "\"n\":{\"x\":1}";
        return out + "}";
    };
    for (int batch = 0; batch < 60; ++batch) {
        std::vector<NewEvent> events;
        for (int i = 0, n = 1 + pick(4); i < n; ++i)
            events.push_back(event(type_names[pick(3)], payload()));
        (void)store.append(std::move(events));
    }
    Backend& engine = store.backend();
    int exact = 0;
    for (int round = 0; round < 200; ++round) {
        EventQuery query;
        query.filters.emplace();
        for (int f = 0, n = 1 + pick(2); f < n; ++f) {
            EventFilter filter;
            if (pick(3)) filter.event_types = std::vector<std::string>{type_names[pick(3)]};
            if (pick(3) || !filter.event_types) {
                std::string predicate = "{";
                for (const char* key : {"a", "b"}) {
                    if (pick(2) == 0 && predicate.size() > 1) continue;
                    if (predicate.size() > 1) predicate += ',';
                    predicate += std::string("\"") + key + "\":" + scalar();
                }
                filter.payload_predicates = std::vector<std::string>{predicate + "}"};
            }
            query.filters->push_back(std::move(filter));
        }
        const CompiledQuery compiled(query);
        const auto shared = store.query(query).current_context_version;
        if (!engine.decides_append_if_in_statement(compiled)) continue;
        ++exact;
        INFO("query " << to_json(query));
        CHECK(engine.statement_context_version(compiled) == shared);
        // A wrong expectation conflicts, naming the shared version; the right one commits.
        const std::optional<SequenceNumber> wrong =
            shared ? std::optional<SequenceNumber>(*shared + 1000)
                   : std::optional<SequenceNumber>(1);
        const AppendIfResult refused = store.append_if({event("Probe", "{}")}, query, wrong);
        REQUIRE_FALSE(refused.committed());
        CHECK(refused.conflict()->actual_context_version == shared);
        if (round % 10 == 0) {
            const AppendIfResult accepted = store.append_if({event("Probe", "{}")}, query, shared);
            CHECK(accepted.committed());
        }
    }
    CHECK(exact > 50);
}
