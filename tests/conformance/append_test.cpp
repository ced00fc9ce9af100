#include <catch2/catch.hpp>
#include <cstdio>
#include <ctime>
#include <random>

#include "../support/helpers.hpp"
#include "../support/store_factory.hpp"

using namespace factstr;
using namespace factstr::testing;

TEST_CASE("appends receive consecutive global ranges starting at one", "[append]") {
    Store store = make_store();
    AppendResult first = store.append({event("a"), event("b")});
    CHECK(first == AppendResult{1, 2, 2});
    AppendResult second = store.append({event("c")});
    CHECK(second == AppendResult{3, 3, 1});
    AppendResult third = store.append({event("d"), event("e"), event("f")});
    CHECK(third == AppendResult{4, 6, 3});
    CHECK(store.head() == 6);
}

TEST_CASE("an empty append is a typed error and writes nothing", "[append]") {
    Store store = make_store();
    try {
        (void)store.append({});
        FAIL("expected an error");
    } catch (const InvalidInput& e) {
        CHECK(e.code() == ErrorCode::empty_append);
    }
    CHECK(store.head() == 0);
    CHECK(store.append({event("a")}).first_sequence_number == 1);
}

TEST_CASE("invalid payload JSON names the event and writes nothing", "[append]") {
    Store store = make_store();
    try {
        (void)store.append({event("ok", R"({"a":1})"), event("bad", R"({"a":)")});
        FAIL("expected an error");
    } catch (const InvalidInput& e) {
        CHECK(e.code() == ErrorCode::invalid_json);
        CHECK_THAT(e.what(), Catch::Contains("event 1") && Catch::Contains("bad"));
    }
    CHECK(store.head() == 0);
    CHECK(store.query({}).event_records.empty());
}

TEST_CASE("payloads are stored compact and read back as written", "[append]") {
    Store store = make_store();
    (void)store.append({event("t", "{ \"a\" : [1, 2, {\"b\": \"x y\"}] }")});
    auto result = store.query({});
    REQUIRE(result.event_records.size() == 1);
    CHECK(result.event_records[0].payload == R"({"a":[1,2,{"b":"x y"}]})");
    CHECK(result.event_records[0].event_type == "t");
}

TEST_CASE("occurred_at text is RFC 3339 UTC with microseconds and reads back exactly", "[append]") {
    // The C library's spelling is the reference, over dates from 1583 to 9999 (leap days,
    // before 1970, the last microsecond of a day), and beyond four-digit years.
    auto reference = [](std::int64_t micros) {
        const std::int64_t fraction = ((micros % 1000000) + 1000000) % 1000000;
        const auto seconds = static_cast<std::time_t>((micros - fraction) / 1000000);
        std::tm tm{};
        gmtime_r(&seconds, &tm);
        char date[64];
        std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
        std::string micro = std::to_string(fraction);
        return std::string(date) + "." + std::string(6 - micro.size(), '0') + micro + "Z";
    };
    std::vector<std::int64_t> instants = {0,
                                          -1,
                                          1,
                                          86'400'000'000 - 1,
                                          951'782'400'000'000,      // 2000-02-29
                                          -12'219'292'800'000'000,  // 1582-10-15
                                          253'402'300'799'999'999,  // 9999-12-31 end
                                          253'402'300'800'000'000,  // 10000-01-01
                                          1'764'000'000'123'456};
    std::mt19937_64 random(3339);
    for (int i = 0; i < 20000; ++i)
        instants.push_back(static_cast<std::int64_t>(random() % 265'000'000'000'000'000ULL) -
                           12'000'000'000'000'000);
    for (std::int64_t micros : instants) {
        const Timestamp at{std::chrono::microseconds(micros)};
        const std::string text = json::format_rfc3339(at);
        INFO(micros);
        REQUIRE(text == reference(micros));
        if (text.size() == 27) REQUIRE(json::parse_rfc3339(text) == at);
    }
}

TEST_CASE("append_recorded keeps occurred_at and lands only where it is expected", "[append]") {
    Store store = make_store();
    const Timestamp then = json::parse_rfc3339("2020-02-29T12:34:56.789012Z");
    EventRecord recorded{99, then, "imported", R"({"k":1})"};
    AppendResult first = store.append_recorded({recorded, recorded}, 1);
    CHECK(first == AppendResult{1, 2, 2});
    auto facts = store.query({}).event_records;
    REQUIRE(facts.size() == 2);
    CHECK(facts[0].occurred_at == then);
    CHECK(facts[1].occurred_at == then);
    CHECK(json::format_rfc3339(facts[0].occurred_at) == "2020-02-29T12:34:56.789012Z");
    // Not continuing the log: refused, nothing written.
    try {
        (void)store.append_recorded({recorded}, 5);
        FAIL("expected a refusal");
    } catch (const InvalidInput& e) {
        CHECK_THAT(e.what(), Catch::Contains("head is 2"));
    }
    CHECK(store.head() == 2);
    CHECK(store.append_recorded({recorded}).last_sequence_number == 3);
}

TEST_CASE("a payload with a key twice in one object is invalid JSON input and writes nothing",
          "[append]") {
    Store store = make_store();
    for (const char* payload :
         {R"({"a":1,"a":2})", R"({"x":{"b":1,"c":2,"b":3}})", R"([{"k":1},{"k":2,"k":2}])"}) {
        INFO(payload);
        try {
            (void)store.append({event("ok"), event("dup", payload)});
            FAIL("expected an error");
        } catch (const InvalidInput& e) {
            CHECK(e.code() == ErrorCode::invalid_json);
            CHECK_THAT(e.what(), Catch::Contains("event 1") && Catch::Contains("twice"));
        }
    }
    CHECK(store.head() == 0);
    // The same key in different objects is fine.
    CHECK(store.append({event("ok", R"({"a":{"a":1},"b":[{"a":2},{"a":3}]})")})
              .last_sequence_number == 1);
}

TEST_CASE("compaction keeps strings exactly, escaped quotes and backslashes included", "[append]") {
    Store store = make_store();
    (void)store.append({event("t", "{\"s\":\"quote \\\" inside \\\\\", \"t\" :\t\"\\\\\"}"),
                        event("t", "\n[ \"a\\\\\\\"b\" , null ]\r\n"),
                        event("t", "\"  spaced  \"")});
    auto facts = store.query({}).event_records;
    REQUIRE(facts.size() == 3);
    CHECK(facts[0].payload == "{\"s\":\"quote \\\" inside \\\\\",\"t\":\"\\\\\"}");
    CHECK(facts[1].payload == "[\"a\\\\\\\"b\",null]");
    CHECK(facts[2].payload == "\"  spaced  \"");
}

TEST_CASE("payload text with spare capacity is parsed in place and read to its length only",
          "[append]") {
    // Text with json::kParsePadding spare bytes of capacity is parsed where it lies (the Node
    // binding passes its payloads so). Whatever those bytes hold is not part of the payload.
    auto with_junk_after = [](std::string text) {
        const std::size_t size = text.size();
        text += std::string(json::kParsePadding + 16, '9');
        text.resize(size);  // the junk stays in the buffer, past the end
        REQUIRE(text.capacity() - text.size() >= json::kParsePadding);
        return text;
    };
    Store store = make_store();
    (void)store.append({event("t", with_junk_after(R"( { "n" : 12 , "k" : "v" } )")),
                        event("t", with_junk_after("12")), event("t", with_junk_after("\"s\""))});
    auto facts = store.query({}).event_records;
    REQUIRE(facts.size() == 3);
    CHECK(facts[0].payload == R"({"n":12,"k":"v"})");
    CHECK(facts[1].payload == "12");
    CHECK(facts[2].payload == "\"s\"");
    CHECK(sequence_numbers(store.query(query_of({predicates({R"({"n":12})"})})).event_records) ==
          std::vector<SequenceNumber>{1});
    CHECK(store.query(query_of({predicates({R"({"n":1299})"})})).event_records.empty());
    for (const char* bad : {R"({"n":)", R"({"n":1,"n":2})", "[1,"}) {
        INFO(bad);
        CHECK_THROWS_AS(store.append({event("bad", with_junk_after(bad))}), InvalidInput);
    }
    CHECK(store.head() == 3);
}

TEST_CASE("integers beyond 64 bits are valid payload JSON, kept as written, matched as doubles",
          "[append][query]") {
    // 12345678901234567890123 is valid JSON that simdjson alone refuses; it is read as the
    // double nearest to it. Numbers inside 64 bits keep their exact integer value even when a
    // big one is in the same payload.
    Store store = make_store();
    const std::string payload =
        R"({"big":12345678901234567890123,"neg":-99999999999999999999,"i":9223372036854775807,)"
        R"("min":-9223372036854775808,"u":18446744073709551615,"s":"12345678901234567890123",)"
        R"("list":[123456789012345678901234567890,1.5e300]})";
    CHECK(store.append({event("t", payload), event("t", R"({"i":9223372036854775806})")}) ==
          AppendResult{1, 2, 2});
    CHECK(store.query({}).event_records[0].payload == payload);
    auto found = [&](const std::string& predicate) {
        return sequence_numbers(store.query(query_of({predicates({predicate})})).event_records);
    };
    using Seqs = std::vector<SequenceNumber>;
    CHECK(found(R"({"big":12345678901234567890123})") == Seqs{1});
    CHECK(found(R"({"neg":-99999999999999999999})") == Seqs{1});
    CHECK(found(R"({"big":12345678901234567890124})") == Seqs{1});  // the same double
    CHECK(found(R"({"big":12345678901234568890123})").empty());
    CHECK(found(R"({"i":9223372036854775807})") == Seqs{1});
    CHECK(found(R"({"i":9223372036854775806})") == Seqs{2});
    CHECK(found(R"({"min":-9223372036854775808})") == Seqs{1});
    CHECK(found(R"({"u":18446744073709551615})") == Seqs{1});
    CHECK(found(R"({"s":"12345678901234567890123"})") == Seqs{1});
    CHECK(found(R"({"list":[123456789012345678901234567890]})") == Seqs{1});
    // A context with such a number decides append_if like any other.
    const EventQuery context = query_of({predicates({R"({"big":12345678901234567890123})"})});
    CHECK(store.append_if({event("t", R"({"big":12345678901234567890123})")}, context, 1)
              .append_result());
    CHECK(store.append_if({event("t")}, context, 1).conflict());
    // Beyond 64 bits is not beyond JSON: malformed numbers are still refused.
    // Nor is beyond a double's range: 1e400, or an integer of 400 digits.
    const std::string huge = R"({"n":)" + std::string(400, '9') + "}";
    for (const std::string& bad :
         {std::string(R"({"n":012345678901234567890123})"), std::string(R"({"n":-})"),
          std::string(R"({"n":1.})"), std::string(R"({"n":1e400})"), huge}) {
        INFO(bad);
        CHECK_THROWS_AS(store.append({event("bad", bad)}), InvalidInput);
    }
    CHECK(store.head() == 3);
}

TEST_CASE("json::member_text and json::item_texts give a value's text as written", "[json]") {
    CHECK(json::member_text(R"({"event_type":"t","payload":{"n" : 1.10 }  })", "payload", "line") ==
          R"({"n" : 1.10 })");
    CHECK(json::member_text(R"({"meta":{"payload":1},"payload":2})", "payload", "line") == "2");
    CHECK(json::member_text(R"({"pay\u006coad":[1E2 , 3] ,"payload":0})", "payload", "line") ==
          "[1E2 , 3]");
    CHECK(json::member_text(R"({"payload" : 12345678901234567890123 })", "payload", "line") ==
          "12345678901234567890123");
    CHECK_FALSE(json::member_text(R"({"other":1})", "payload", "line"));
    CHECK_FALSE(json::member_text("[1]", "payload", "line"));
    CHECK_THROWS_AS(json::member_text(R"({"payload":1} x)", "payload", "line"), InvalidInput);

    const std::string array = R"([ {"a" : 1} , [1 ,2] , "s" , 1.50 ])";
    CHECK(json::item_texts(array, false, "payloads") ==
          std::vector<std::string_view>{R"({"a" : 1})", "[1 ,2]", R"("s")", "1.50"});
    for (const char* bad : {"[1,2]]", "[1,2],[3]", "{}", "[1,"}) {
        INFO(bad);
        CHECK_THROWS_AS(json::item_texts(bad, false, "payloads"), InvalidInput);
    }
}
