// Concurrency (DESIGN.md §1): many writers produce one gap-free log of consecutive batch
// ranges; append_if's check and write are one atomic step; streams see every fact once, in
// order, under load.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../support/helpers.hpp"
#include "../support/store_factory.hpp"

using namespace factstr;
using namespace factstr::testing;

namespace {

constexpr int kThreads = 8;

std::string fact_payload(int thread, int attempt, int part, int account = -1) {
    std::string out = "{\"t\":" + std::to_string(thread) + ",\"i\":" + std::to_string(attempt) +
                      ",\"j\":" + std::to_string(part);
    if (account >= 0) out += ",\"account\":" + std::to_string(account);
    return out + "}";
}

struct Committed {
    int thread;
    int attempt;
    AppendResult result;
    std::size_t size;
};

// A log `facts` (ascending, 1..N) is gap-free and every committed range holds exactly the
// facts its append wrote, in order.
void check_log_against(const std::vector<EventRecord>& facts, std::vector<Committed> committed,
                       const std::function<std::string(const Committed&, int part)>& payload_of) {
    std::sort(committed.begin(), committed.end(), [](const Committed& a, const Committed& b) {
        return a.result.first_sequence_number < b.result.first_sequence_number;
    });
    SequenceNumber expected_first = 1;
    std::size_t total = 0;
    for (const Committed& c : committed) {
        INFO("thread " << c.thread << " attempt " << c.attempt << " got " << c.result);
        // Consecutive ranges, no overlap, no gap.
        CHECK(c.result.first_sequence_number == expected_first);
        CHECK(c.result.committed_count == c.size);
        CHECK(c.result.last_sequence_number - c.result.first_sequence_number + 1 == c.size);
        expected_first = c.result.last_sequence_number + 1;
        total += c.size;
        for (std::size_t part = 0; part < c.size; ++part) {
            const SequenceNumber seq = c.result.first_sequence_number + part;
            REQUIRE(seq <= facts.size());
            CHECK(facts[seq - 1].sequence_number == seq);
            CHECK(facts[seq - 1].payload == payload_of(c, int(part)));
        }
    }
    CHECK(facts.size() == total);
    CHECK(sequence_numbers(facts) == range(1, total));
}

bool ends_at(const std::vector<Batch>& batches, SequenceNumber last) {
    return !batches.empty() && batches.back().back().sequence_number == last;
}

}  // namespace

TEST_CASE(
    "concurrent appends from many threads produce one gap-free log of consecutive, non-overlapping "
    "batch ranges",
    "[concurrency]") {
    Store store = make_store();
    constexpr int kAppends = 150;
    std::mutex mutex;
    std::vector<Committed> committed;
    std::vector<std::thread> threads;
    std::atomic<bool> go{false};
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            while (!go)
                std::this_thread::yield();
            std::vector<Committed> mine;
            for (int i = 0; i < kAppends; ++i) {
                const int size = i % 2 == 0 ? 1 : 1 + (i + t) % 5;
                std::vector<NewEvent> batch;
                for (int j = 0; j < size; ++j)
                    batch.push_back(event("e" + std::to_string(t), fact_payload(t, i, j)));
                mine.push_back(Committed{t, i, store.append(std::move(batch)), std::size_t(size)});
            }
            std::lock_guard lock(mutex);
            committed.insert(committed.end(), mine.begin(), mine.end());
        });
    }
    go = true;
    for (auto& th : threads)
        th.join();
    REQUIRE(committed.size() == std::size_t(kThreads * kAppends));
    // One thread's appends are ordered among themselves (each thread's entries were added in
    // its own order).
    for (int t = 0; t < kThreads; ++t) {
        SequenceNumber last = 0;
        for (const auto& c : committed) {
            if (c.thread != t) continue;
            CHECK(c.result.first_sequence_number > last);
            last = c.result.last_sequence_number;
        }
    }
    std::size_t total = 0;
    for (const auto& c : committed)
        total += c.size;
    CHECK(store.head() == total);
    check_log_against(all_facts(store), committed, [](const Committed& c, int part) {
        return fact_payload(c.thread, c.attempt, part);
    });
    // Each thread's facts, queried by its type, are exactly its own, in order.
    for (int t = 0; t < kThreads; ++t) {
        QueryResult mine = store.query(query_of({types({"e" + std::to_string(t)})}));
        std::size_t expected = 0;
        for (const auto& c : committed)
            if (c.thread == t) expected += c.size;
        CHECK(mine.event_records.size() == expected);
        for (const auto& r : mine.event_records)
            CHECK_THAT(r.payload, Catch::StartsWith("{\"t\":" + std::to_string(t) + ","));
    }
}

namespace {

struct Attempt {
    int thread;
    int attempt;
    std::vector<int> accounts;  // the context: facts of these accounts
    std::optional<SequenceNumber> expected;
    bool committed;
    AppendResult result;                   // when committed
    std::optional<SequenceNumber> actual;  // when in conflict
    std::size_t size;
    std::optional<SequenceNumber> reported_expected = std::nullopt;  // the conflict's copy
};

EventQuery accounts_context(const std::vector<int>& accounts) {
    std::vector<std::string> preds;
    for (int a : accounts)
        preds.push_back(numbered("account", a));
    return query_of({predicates(preds)});
}

// The account a fact was written for, or -1.
int account_of(const EventRecord& r) {
    const auto at = r.payload.find("\"account\":");
    if (at == std::string::npos) return -1;
    return std::stoi(r.payload.substr(at + 10));
}

}  // namespace

TEST_CASE(
    "concurrent query-then-append_if on overlapping contexts is explained by the serial order of "
    "commits",
    "[concurrency]") {
    Store store = make_store();
    constexpr int kAccounts = 4;
    constexpr int kAttempts = 80;
    auto live = std::make_shared<BatchRecorder>();
    Subscription sub = store.stream_all(record_into(live));

    std::mutex mutex;
    std::vector<Attempt> attempts;
    std::vector<std::thread> threads;
    std::atomic<bool> go{false};
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            while (!go)
                std::this_thread::yield();
            std::vector<Attempt> mine;
            for (int i = 0; i < kAttempts; ++i) {
                Attempt a{t, i, {}, std::nullopt, false, {}, std::nullopt, 0};
                const int first = (t + i) % kAccounts;
                // Half the attempts are transfers over two accounts, with a context of both.
                a.accounts = i % 2 == 0 ? std::vector<int>{first}
                                        : std::vector<int>{first, (first + 1) % kAccounts};
                const EventQuery context = accounts_context(a.accounts);
                a.expected = store.query(context).current_context_version;
                std::vector<NewEvent> batch;
                for (std::size_t j = 0; j < a.accounts.size(); ++j)
                    batch.push_back(event("moved", fact_payload(t, i, int(j), a.accounts[j])));
                a.size = batch.size();
                AppendIfResult r = store.append_if(std::move(batch), context, a.expected);
                if (r.committed()) {
                    a.committed = true;
                    a.result = *r.append_result();
                } else if (r.conflict() != nullptr) {
                    a.reported_expected = r.conflict()->expected_context_version;
                    a.actual = r.conflict()->actual_context_version;
                }
                mine.push_back(a);
            }
            std::lock_guard lock(mutex);
            attempts.insert(attempts.end(), mine.begin(), mine.end());
        });
    }
    go = true;
    for (auto& th : threads)
        th.join();
    REQUIRE(attempts.size() == std::size_t(kThreads * kAttempts));

    const std::vector<EventRecord> facts = all_facts(store);
    std::vector<Committed> committed;
    std::size_t successes = 0;
    for (const Attempt& a : attempts)
        if (a.committed) {
            committed.push_back(Committed{a.thread, a.attempt, a.result, a.size});
            ++successes;
        }
    CHECK(successes > 0);
    // Nothing lost, nothing duplicated, no gap; every batch where its append put it.
    std::map<std::pair<int, int>, const Attempt*> by_id;
    for (const Attempt& a : attempts)
        by_id[{a.thread, a.attempt}] = &a;
    check_log_against(facts, committed, [&](const Committed& c, int part) {
        return fact_payload(c.thread, c.attempt, part,
                            by_id.at({c.thread, c.attempt})->accounts[part]);
    });

    // Replaying the log in commit order explains every outcome.
    std::vector<int> fact_accounts;
    for (const auto& r : facts)
        fact_accounts.push_back(account_of(r));
    CHECK(std::count(fact_accounts.begin(), fact_accounts.end(), -1) == 0);
    auto version_before = [&](const std::vector<int>& accounts, SequenceNumber before) {
        std::optional<SequenceNumber> version;
        for (SequenceNumber s = 1; s < before && s <= facts.size(); ++s) {
            const int acc = fact_accounts[s - 1];
            if (std::find(accounts.begin(), accounts.end(), acc) != accounts.end()) version = s;
        }
        return version;
    };
    for (const Attempt& a : attempts) {
        INFO("thread " << a.thread << " attempt " << a.attempt);
        if (a.committed) {
            // The context's version just before this commit is the one it expected.
            CHECK(version_before(a.accounts, a.result.first_sequence_number) == a.expected);
        } else {
            // A conflict carries an actual version that differs from the expected one, is
            // newer than it, and names a fact of the context.
            CHECK(a.reported_expected == a.expected);
            CHECK(a.actual != a.expected);
            REQUIRE(a.actual.has_value());
            if (a.expected) CHECK(*a.actual > *a.expected);
            REQUIRE(*a.actual <= facts.size());
            const int acc = account_of(facts[*a.actual - 1]);
            CHECK(std::find(a.accounts.begin(), a.accounts.end(), acc) != a.accounts.end());
        }
    }
    // The final versions agree with the log.
    for (int acc = 0; acc < kAccounts; ++acc)
        CHECK(store.query(accounts_context({acc})).current_context_version ==
              version_before({acc}, facts.size() + 1));

    // The live stream saw every committed batch once, in order.
    REQUIRE(live->wait_until([&](const auto& b) { return ends_at(b, facts.size()); }));
    settle();
    CHECK(live->all_sequence_numbers() == range(1, facts.size()));
    CHECK(live->batches().size() == successes);
    sub.unsubscribe();
}

TEST_CASE("live streams see every fact of a concurrent load exactly once and in order",
          "[concurrency]") {
    Store store = make_store();
    auto all = std::make_shared<BatchRecorder>();
    auto account0 = std::make_shared<BatchRecorder>();
    auto durable = std::make_shared<BatchRecorder>();
    Subscription s1 = store.stream_all(record_into(all));
    Subscription s2 =
        store.stream_to(query_of({predicates({numbered("account", 0)})}), record_into(account0));
    Subscription s3 = store.stream_all_durable(DurableStream{"under-load"}, record_into(durable));

    constexpr int kAppends = 100;
    std::mutex mutex;
    std::atomic<int> unexpected_conflicts{0};
    std::vector<std::pair<SequenceNumber, SequenceNumber>> ranges;
    std::vector<std::thread> threads;
    std::atomic<bool> go{false};
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            while (!go)
                std::this_thread::yield();
            for (int i = 0; i < kAppends; ++i) {
                std::vector<NewEvent> batch;
                for (int j = 0; j <= i % 3; ++j)
                    batch.push_back(event("x", fact_payload(t, i, j, (t + j) % 3)));
                std::optional<AppendResult> r;
                if (t % 2 == 0) {
                    r = store.append(std::move(batch));
                } else {
                    // Unconditional in effect, but through append_if on a context nobody writes.
                    AppendIfResult c = store.append_if(std::move(batch),
                                                       query_of({types({"never"})}), std::nullopt);
                    if (!c.committed()) {
                        ++unexpected_conflicts;
                        continue;
                    }
                    r = *c.append_result();
                }
                std::lock_guard lock(mutex);
                ranges.emplace_back(r->first_sequence_number, r->last_sequence_number);
            }
        });
    }
    go = true;
    for (auto& th : threads)
        th.join();
    CHECK(unexpected_conflicts.load() == 0);
    const SequenceNumber head = store.head();
    std::sort(ranges.begin(), ranges.end());
    REQUIRE(all->wait_until([&](const auto& b) { return ends_at(b, head); }));
    REQUIRE(durable->wait_until([&](const auto& b) { return ends_at(b, head); }));
    const std::vector<EventRecord> facts = all_facts(store);
    Seqs expected0;
    for (const auto& r : facts)
        if (account_of(r) == 0) expected0.push_back(r.sequence_number);
    REQUIRE(account0->wait_until([&](const auto& b) { return ends_at(b, expected0.back()); }));
    settle();

    for (const auto* rec : {all.get(), durable.get()}) {
        CHECK(rec->all_sequence_numbers() == range(1, head));
        std::vector<std::pair<SequenceNumber, SequenceNumber>> delivered;
        std::vector<EventRecord> records;
        for (const auto& b : rec->batches()) {
            delivered.emplace_back(b.front().sequence_number, b.back().sequence_number);
            records.insert(records.end(), b.begin(), b.end());
        }
        CHECK(delivered == ranges);
        CHECK(records == facts);
    }
    CHECK(account0->all_sequence_numbers() == expected0);
    for (const auto& b : account0->batches()) {
        REQUIRE_FALSE(b.empty());
        // Each filtered batch lies inside one committed range.
        auto it = std::upper_bound(ranges.begin(), ranges.end(),
                                   std::make_pair(b.front().sequence_number, ~SequenceNumber{0}));
        REQUIRE(it != ranges.begin());
        --it;
        CHECK(b.back().sequence_number <= it->second);
    }
    REQUIRE(wait_for([&] { return cursor_position(store, "under-load") == head; }));
    s1.unsubscribe();
    s2.unsubscribe();
    s3.unsubscribe();
}
