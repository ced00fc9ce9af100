// Projection semantics, written once against the public interface and linked per backend
// (memory, SQLite, PostgreSQL) like the conformance suite.
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "../support/store_factory.hpp"

using namespace factstr;
using namespace factstr::projections;
using factstr::testing::make_store;
using factstr::testing::reopen_store;

namespace {

EngineOptions fast_options(std::string worker = {}) {
    EngineOptions options;
    options.lease = std::chrono::milliseconds(600);
    options.worker_id = std::move(worker);
    options.page_facts = 257;  // small pages: many transactions, keys spread over pages
    return options;
}

NewEvent ev(std::string type, std::string payload) {
    return NewEvent{std::move(type), std::move(payload)};
}

// A derived row by its first key column's value, as column -> cell.
std::map<std::string, Cell> row(const Table& table, const Cell& key) {
    for (const auto& values : table.rows) {
        if (values.front() != key) continue;
        std::map<std::string, Cell> result;
        for (std::size_t c = 0; c < table.columns.size(); ++c)
            result[table.columns[c]] = values[c];
        return result;
    }
    FAIL("no row with that key");
    return {};
}

Cell text(const char* s) {
    return Cell(std::string(s));
}
Cell integer(std::int64_t i) {
    return Cell(i);
}

Table run_to_head(Store& store, const std::vector<Projection>& projections,
                  const std::string& table) {
    Engine engine(store, fast_options());
    for (const Projection& projection : projections)
        engine.add(projection);
    engine.start();
    REQUIRE(engine.wait_caught_up(std::chrono::seconds(30)));
    Table result = engine.read(table);
    engine.stop();
    return result;
}

Projection bank() {
    StateMachine status;
    status.states = {"open", "frozen", "closed"};
    status.initial = "open";
    status.transitions = {{{"open"}, on({"account-frozen"}), "frozen"},
                          {{"frozen"}, on({"account-unfrozen"}), "open"},
                          {{"open", "frozen"}, on({"account-closed"}), "closed"}};
    Projection accounts("accounts");
    accounts.key_by("accountId")
        .count("deposits", on({"deposited"}))
        .sum("deposited_total", on({"deposited"}), "amount", ColumnType::integer)
        .weighted_sum("balance",
                      {{on({"deposited"}), 1, "amount", 1}, {on({"withdrawn"}), -1, "amount", 1}},
                      ColumnType::integer)
        .average("mean_deposit", on({"deposited"}), "amount")
        .state_machine("status", status);
    return accounts;
}

}  // namespace

TEST_CASE("count counts the matching facts per key and ignores the others", "[projections]") {
    Store store = make_store();
    (void)store.append(
        {ev("post-liked", R"({"postId":"p1"})"), ev("post-liked", R"({"postId":"p1"})"),
         ev("post-liked", R"({"postId":"p2"})"), ev("post-viewed", R"({"postId":"p1"})")});
    (void)store.append({ev("post-liked", R"({"postId":"p1","by":"x"})")});
    Projection likes("likes");
    likes.key_by("postId").count("likes", on({"post-liked"}));
    Table table = run_to_head(store, {likes}, "likes");
    REQUIRE(table.rows.size() == 2);
    CHECK(row(table, text("p1"))["likes"] == integer(3));
    CHECK(row(table, text("p2"))["likes"] == integer(1));
}

TEST_CASE("sums, weighted sums, averages and states follow the bank account facts",
          "[projections]") {
    Store store = make_store();
    (void)store.append({ev("deposited", R"({"accountId":"a","amount":100})"),
                        ev("deposited", R"({"accountId":"a","amount":50})"),
                        ev("withdrawn", R"({"accountId":"a","amount":30})")});
    (void)store.append({ev("account-frozen", R"({"accountId":"a"})")});
    (void)store.append({ev("account-frozen", R"({"accountId":"a"})")});  // ignored: already frozen
    (void)store.append({ev("deposited", R"({"accountId":"b","amount":7})"),
                        ev("account-closed", R"({"accountId":"b"})"),
                        ev("account-unfrozen", R"({"accountId":"b"})")});  // ignored: closed
    (void)store.append({ev("withdrawn", R"({"accountId":"c","amount":5})")});

    Table table = run_to_head(store, {bank()}, "accounts");
    auto a = row(table, text("a"));
    CHECK(a["deposits"] == integer(2));
    CHECK(a["deposited_total"] == integer(150));
    CHECK(a["balance"] == integer(120));
    CHECK(a["mean_deposit"] == Cell(75.0));
    CHECK(a["mean_deposit_sum"] == Cell(150.0));
    CHECK(a["mean_deposit_count"] == integer(2));
    CHECK(a["status"] == text("frozen"));
    CHECK(a["status_ignored"] == integer(1));
    auto b = row(table, text("b"));
    CHECK(b["balance"] == integer(7));
    CHECK(b["status"] == text("closed"));
    CHECK(b["status_ignored"] == integer(1));
    auto c = row(table, text("c"));
    CHECK(c["deposits"] == integer(0));
    CHECK(c["balance"] == integer(-5));
    CHECK(std::holds_alternative<std::monostate>(c["mean_deposit"]));  // no deposit yet
    CHECK(c["status"] == text("open"));
}

TEST_CASE("a real sum and a weighted sum with constants keep fractions", "[projections]") {
    Store store = make_store();
    (void)store.append(
        {ev("added", R"({"sku":"s1","qty":2.5})"), ev("added", R"({"sku":"s1","qty":1})"),
         ev("sold", R"({"sku":"s1","qty":0.5})"), ev("returned", R"({"sku":"s1"})")});
    Projection stock("stock");
    stock.key_by("sku")
        .sum("added_qty", on({"added"}), "qty")
        .weighted_sum("on_hand", {{on({"added"}), 1, "qty", 1},
                                  {on({"sold"}), -1, "qty", 1},
                                  {on({"returned"}), 1, std::nullopt, 1}});
    Table table = run_to_head(store, {stock}, "stock");
    auto s1 = row(table, text("s1"));
    CHECK(s1["added_qty"] == Cell(3.5));
    CHECK(s1["on_hand"] == Cell(4.0));
}

TEST_CASE("every and any report their empty value until a fact matches", "[projections]") {
    Store store = make_store();
    (void)store.append({ev("order-placed", R"({"orderId":"o1"})"),
                        ev("order-placed", R"({"orderId":"o2"})"),
                        ev("item-checked", R"({"orderId":"o2","ok":true})"),
                        ev("item-checked", R"({"orderId":"o2","ok":false})"),
                        ev("order-placed", R"({"orderId":"o3"})"),
                        ev("item-checked", R"({"orderId":"o3","ok":true})")});
    Projection orders("orders");
    orders.key_by("orderId")
        .count("placed", on({"order-placed"}))
        .every("all_ok", on({"item-checked"}), R"({"ok":true})", true)
        .any("some_ok", on({"item-checked"}), R"({"ok":true})", false);
    Table table = run_to_head(store, {orders}, "orders");
    auto o1 = row(table, text("o1"));
    CHECK(o1["all_ok"] == Cell(true));
    CHECK(o1["some_ok"] == Cell(false));
    auto o2 = row(table, text("o2"));
    CHECK(o2["all_ok"] == Cell(false));
    CHECK(o2["some_ok"] == Cell(true));
    CHECK(o2["all_ok_matched"] == integer(2));
    CHECK(o2["all_ok_satisfied"] == integer(1));
    auto o3 = row(table, text("o3"));
    CHECK(o3["all_ok"] == Cell(true));
    CHECK(o3["some_ok"] == Cell(true));
}

TEST_CASE(
    "a transform keeps one row per key, replaced by later facts and removed on its remove "
    "filter",
    "[projections]") {
    Store store = make_store();
    (void)store.append({ev("post-created", R"({"postId":"p1","title":"one","words":10})"),
                        ev("post-created", R"({"postId":"p2","title":"two"})"),
                        ev("post-created", R"({"postId":"p3","title":"three","words":3})")});
    (void)store.append({ev("post-created", R"({"postId":"p1","title":"one, edited","words":12})"),
                        ev("post-deleted", R"({"postId":"p3"})")});
    Projection posts("posts");
    Transform rows;
    rows.columns = {{"title", "title", ColumnType::text}, {"words", "words", ColumnType::integer}};
    rows.remove_on = on({"post-deleted"});
    posts.key_by("postId").transform("rows", on({"post-created"}), rows);
    Table table = run_to_head(store, {posts}, "posts_rows");
    REQUIRE(table.rows.size() == 2);
    CHECK(row(table, text("p1"))["title"] == text("one, edited"));
    CHECK(row(table, text("p1"))["words"] == integer(12));
    CHECK(std::holds_alternative<std::monostate>(row(table, text("p2"))["words"]));
}

TEST_CASE("a projection without key fields keeps one global row", "[projections]") {
    Store store = make_store();
    (void)store.append({ev("signed-up", R"({"user":"u1"})"), ev("signed-up", R"({"user":"u2"})")});
    Projection totals("totals");
    totals.count("users", on({"signed-up"}));
    Table table = run_to_head(store, {totals}, "totals");
    REQUIRE(table.rows.size() == 1);
    CHECK(table.rows[0][table.column("users")] == integer(2));
}

TEST_CASE("a running projection applies facts appended after it started", "[projections]") {
    Store store = make_store();
    Engine engine(store, fast_options());
    engine.add(bank());
    engine.start();
    for (int i = 0; i < 20; ++i)
        (void)store.append({ev("deposited", R"({"accountId":"live","amount":5})")});
    REQUIRE(engine.wait_caught_up(std::chrono::seconds(30)));
    auto live = row(engine.read("accounts"), text("live"));
    CHECK(live["deposits"] == integer(20));
    CHECK(live["balance"] == integer(100));
    auto statuses = engine.status();
    REQUIRE(statuses.size() == 1);
    CHECK(statuses[0].state == ProjectionStatus::State::caught_up);
    CHECK(statuses[0].checkpoint == store.head());
    CHECK(statuses[0].lag_facts == 0);
    CHECK(statuses[0].owner.has_value());
}

TEST_CASE(
    "a fact a projection cannot apply stops that projection with its position, and the "
    "others keep going",
    "[projections]") {
    Store store = make_store();
    (void)store.append({ev("deposited", R"({"accountId":"a","amount":10})")});
    Projection counts("deposit_counts");
    counts.key_by("accountId").count("deposits", on({"deposited"}));
    Engine engine(store, fast_options());
    engine.add(bank());
    engine.add(counts);
    engine.start();
    REQUIRE(engine.wait_caught_up(std::chrono::seconds(30)));
    const auto bad = store.append({ev("deposited", R"({"accountId":"a","amount":"ten"})")});
    (void)store.append({ev("deposited", R"({"accountId":"a","amount":1})")});
    REQUIRE(engine.wait_caught_up(std::chrono::seconds(30)));
    CHECK(row(engine.read("deposit_counts"), text("a"))["deposits"] == integer(3));
    auto statuses = engine.status();
    auto failed = std::find_if(statuses.begin(), statuses.end(),
                               [](const auto& s) { return s.name == "accounts"; });
    REQUIRE(failed != statuses.end());
    CHECK(failed->state == ProjectionStatus::State::failed);
    CHECK(failed->error_position == bad.first_sequence_number);
    REQUIRE(failed->error);
    CHECK_THAT(*failed->error, Catch::Contains("\"ten\"") && Catch::Contains("not an integer"));
    CHECK(failed->checkpoint < bad.first_sequence_number);
    // Nothing of the failing page was applied; the facts before it were.
    CHECK(row(engine.read("accounts"), text("a"))["balance"] == integer(10));
    // Seen from outside the engine too.
    auto seen = projections::status(store);
    CHECK(std::find_if(seen.begin(), seen.end(), [](const auto& s) {
              return s.name == "accounts" && s.state == ProjectionStatus::State::failed;
          }) != seen.end());
}

TEST_CASE(
    "a changed declaration is refused against old derived data, and rebuild switches to "
    "it with the same table a fresh run gives",
    "[projections]") {
    Store store = make_store();
    std::mt19937 random(7);
    for (int i = 0; i < 300; ++i)
        (void)store.append({ev(i % 3 ? "deposited" : "withdrawn",
                               R"({"accountId":"a)" + std::to_string(random() % 7) +
                                   R"(","amount":)" + std::to_string(random() % 100) + "}")});
    Projection v1("balances");
    v1.key_by("accountId").count("deposits", on({"deposited"}));
    (void)run_to_head(store, {v1}, "balances");

    Projection v2("balances");
    v2.key_by("accountId")
        .count("deposits", on({"deposited"}))
        .weighted_sum("balance",
                      {{on({"deposited"}), 1, "amount", 1}, {on({"withdrawn"}), -1, "amount", 1}},
                      ColumnType::integer);
    {
        Engine engine(store, fast_options());
        try {
            engine.add(v2);
            FAIL("a changed declaration was accepted");
        } catch (const StoreError& e) {
            CHECK(e.code() == ErrorCode::declaration_changed);
            CHECK_THAT(e.what(), Catch::Contains("balances") && Catch::Contains("rebuild"));
        }
        engine.rebuild(v2);
        engine.add(v2);
        engine.start();
        (void)store.append({ev("deposited", R"({"accountId":"a1","amount":1})")});
        REQUIRE(engine.wait_caught_up(std::chrono::seconds(30)));
    }
    Table rebuilt;
    {
        Engine engine(store, fast_options());
        rebuilt = engine.read("balances");
    }
    // A fresh run of the same declaration under another name gives the same rows.
    Projection fresh = v2;
    fresh.name = "balances_fresh";
    Table expected = run_to_head(store, {fresh}, "balances_fresh");
    CHECK(rebuilt.columns == expected.columns);
    CHECK(rebuilt.rows == expected.rows);
    CHECK(rebuilt.rows.size() == 7);
}

TEST_CASE("declarations that cannot work are refused at load, naming the place", "[projections]") {
    auto refused = [](const std::string& json, const std::string& part) {
        try {
            (void)parse_projection(json);
            FAIL("accepted: " << json);
        } catch (const InvalidInput& e) {
            CHECK(e.code() == ErrorCode::invalid_declaration);
            CHECK_THAT(e.what(), Catch::Contains(part));
        }
    };
    refused(
        R"({"name":"p","key":["k"],"computations":[{"column":"n","kind":"count","filter":{}},{"column":"n","kind":"count","filter":{}}]})",
        "column 'n' is declared twice");
    refused(
        R"({"name":"p","key":["k"],"computations":[{"column":"s","kind":"sum","field":"x","type":"money","filter":{}}]})",
        "unknown type 'money'");
    refused(
        R"({"name":"p","key":["k"],"computations":[{"column":"st","kind":"state_machine","states":["a"],"initial":"a","transitions":[{"from":["a"],"on":{"event_types":["x"]},"to":"b"}]}]})",
        "transition to undeclared state 'b'");
    refused(
        R"({"name":"p","key":["k"],"computations":[{"column":"n","kind":"median","filter":{}}]})",
        "unknown kind 'median'");
    refused(R"({"name":"Bad-Name","computations":[{"column":"n","kind":"count","filter":{}}]})",
            "[a-z_][a-z0-9_]*");
    refused(
        R"({"name":"p","computations":[{"column":"n","kind":"count","filter":{"event_types":"x"}}]})",
        "computations[0].filter");
    CHECK_THROWS_AS(parse_projection("{not json"), InvalidInput);
}

TEST_CASE("the JSON form and the builder declare the same projection", "[projections]") {
    const Projection built = bank();
    const Projection parsed = parse_projection(to_json(built));
    CHECK(fingerprint(parsed) == fingerprint(built));
    CHECK(to_json(parsed) == to_json(built));
    const std::string written = R"({"name":"accounts","key":["accountId"],"computations":[
        {"column":"deposits","kind":"count","filter":{"event_types":["deposited"]}}]})";
    Projection by_hand("accounts");
    by_hand.key_by("accountId").count("deposits", on({"deposited"}));
    CHECK(fingerprint(parse_projection(written)) == fingerprint(by_hand));
}

TEST_CASE("a projection resumes exactly where it stopped after the store is reopened",
          "[projections][persistence]") {
    auto first = std::make_optional(make_store());
    for (int i = 0; i < 50; ++i)
        (void)first->append({ev("deposited", R"({"accountId":"r","amount":2})")});
    {
        Engine engine(*first, fast_options("w1"));
        engine.add(bank());
        engine.start();
        REQUIRE(engine.wait_caught_up(std::chrono::seconds(30)));
    }
    std::optional<Store> second = reopen_store();
    if (!second) {
        SUCCEED("the memory store cannot be reopened");
        return;
    }
    first.reset();
    for (int i = 0; i < 30; ++i)
        (void)second->append({ev("withdrawn", R"({"accountId":"r","amount":1})")});
    Engine engine(*second, fast_options("w2"));
    engine.add(bank());
    engine.start();
    REQUIRE(engine.wait_caught_up(std::chrono::seconds(30)));
    auto r = row(engine.read("accounts"), text("r"));
    CHECK(r["deposits"] == integer(50));
    CHECK(r["balance"] == integer(70));
}

TEST_CASE("two engines on one store share the projections through leases, one holder each",
          "[projections][concurrency]") {
    Store store = make_store();
    Projection a("pa"), b("pb"), c("pc");
    a.key_by("k").count("n", on({"x"}));
    b.key_by("k").count("n", on({"x"}));
    c.key_by("k").count("n", on({"x"}));
    Engine one(store, fast_options("one"));
    Engine two(store, fast_options("two"));
    for (Engine* engine : {&one, &two}) {
        engine->add(a);
        engine->add(b);
        engine->add(c);
    }
    one.start();
    two.start();
    for (int i = 0; i < 40; ++i)
        (void)store.append({ev("x", R"({"k":")" + std::to_string(i % 4) + "\"}")});
    // The first engine to start claims everything; the second gets its share when the
    // first gives up its surplus at its next lease round.
    std::set<std::string> owners;
    bool settled = false;
    const auto settle_by = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!settled && std::chrono::steady_clock::now() < settle_by) {
        REQUIRE(one.wait_caught_up(std::chrono::seconds(30)));
        REQUIRE(two.wait_caught_up(std::chrono::seconds(30)));
        owners.clear();
        settled = true;
        for (const auto& status : one.status()) {
            if (status.owner) owners.insert(*status.owner);
            if (!status.owner || status.state != ProjectionStatus::State::caught_up)
                settled = false;
        }
        if (owners.size() != 2) settled = false;
        if (!settled) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(settled);
    CHECK(owners == std::set<std::string>{"one", "two"});
    for (const char* table : {"pa", "pb", "pc"}) {
        Table t = one.read(table);
        REQUIRE(t.rows.size() == 4);
        for (const auto& r : t.rows)
            CHECK(r[t.column("n")] == integer(10));  // each fact applied exactly once
    }
    // When one stops, the other takes over what it held within the lease time.
    one.stop();
    for (int i = 0; i < 8; ++i)
        (void)store.append({ev("x", R"({"k":"0"})")});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    bool all_current = false;
    while (!all_current && std::chrono::steady_clock::now() < deadline) {
        REQUIRE(two.wait_caught_up(std::chrono::seconds(20)));
        all_current = true;
        for (const auto& status : two.status())
            if (status.checkpoint < store.head() ||
                status.owner != std::optional<std::string>("two"))
                all_current = false;
        if (!all_current) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(all_current);
    for (const char* table : {"pa", "pb", "pc"})
        CHECK(row(two.read(table), text("0"))["n"] == integer(18));
}

TEST_CASE("property: every derived value equals the value recomputed from the log with query",
          "[projections][property]") {
    Store store = make_store();
    std::mt19937 random(20261124);
    const char* types[] = {"deposited",        "withdrawn",      "account-frozen",
                           "account-unfrozen", "account-closed", "noise"};
    const int keys = 37;
    int facts = 0;
    Engine engine(store, fast_options());
    engine.add(bank());
    bool started = false;
    while (facts < 3000) {
        std::vector<NewEvent> batch;
        const int size = 1 + static_cast<int>(random() % 9);
        for (int i = 0; i < size; ++i) {
            const char* type = types[random() % 6];
            batch.push_back(ev(type, R"({"accountId":"k)" + std::to_string(random() % keys) +
                                         R"(","amount":)" + std::to_string(random() % 1000) + "}"));
        }
        facts += size;
        (void)store.append(std::move(batch));
        if (!started && facts > 1500) {  // half replayed, half live
            engine.start();
            started = true;
        }
    }
    REQUIRE(engine.wait_caught_up(std::chrono::seconds(60)));
    Table table = engine.read("accounts");

    // The same values computed directly from the log, one key at a time.
    std::size_t rows_expected = 0;
    for (int k = 0; k < keys; ++k) {
        const std::string key = "k" + std::to_string(k);
        EventQuery query;
        query.filters = std::vector<EventFilter>{
            EventFilter{std::nullopt, std::vector<std::string>{R"({"accountId":")" + key + "\"}"}}};
        std::int64_t deposits = 0, deposited = 0, balance = 0, ignored = 0;
        std::string state = "open";
        bool seen = false;
        for (const EventRecord& record : store.query(query).event_records) {
            const auto amount_at = record.payload.find("\"amount\":");
            const std::int64_t amount = std::stoll(record.payload.substr(amount_at + 9));
            const std::string& type = record.event_type;
            if (type == "noise") continue;
            seen = true;
            if (type == "deposited") {
                ++deposits;
                deposited += amount;
                balance += amount;
            } else if (type == "withdrawn") {
                balance -= amount;
            } else if (type == "account-frozen") {
                state == "open" ? void(state = "frozen") : void(++ignored);
            } else if (type == "account-unfrozen") {
                state == "frozen" ? void(state = "open") : void(++ignored);
            } else if (type == "account-closed") {
                state != "closed" ? void(state = "closed") : void(++ignored);
            }
        }
        if (!seen) continue;
        ++rows_expected;
        auto r = row(table, Cell(key));
        CHECK(r["deposits"] == integer(deposits));
        CHECK(r["deposited_total"] == integer(deposited));
        CHECK(r["balance"] == integer(balance));
        CHECK(r["status"] == Cell(state));
        CHECK(r["status_ignored"] == integer(ignored));
        if (deposits > 0)
            CHECK(std::get<double>(r["mean_deposit"]) ==
                  Approx(static_cast<double>(deposited) / static_cast<double>(deposits)));
    }
    CHECK(table.rows.size() == rows_expected);
}
