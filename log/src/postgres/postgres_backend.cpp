// Over 500 lines on purpose for now: the PostgreSQL issue (#18) rebuilds this engine on the
// narrowed port and splits it into schema, planning, reading, writing and listener files;
// this round only moved its evaluation out (log/src/evaluation) and gave it a LogView.
//
// The PostgreSQL backend: one gap-free log shared by many processes on many hosts.
//
// Schema (version 1, owned by the store, created on first open under an advisory lock):
//   factstr_meta(key, value)         format = factstr, schema_version = 1
//   facts(sequence_number bigint PK, occurred_at bigint (µs since 1970, UTC), event_type text,
//         payload text (the compact JSON exactly as appended), batch_last bigint)
//   durable_streams(name PK, position, query_json, updated_at)
//   indexes: (event_type, sequence_number); GIN (jsonb_path_ops) over the payload as jsonb,
//   through the immutable function factstr_payload_index(payload) (plpgsql with a high COST,
//   so that it is not inlined and the planner prefers the index over evaluating it per row).
// The payload is kept as text because jsonb does not keep a payload's text (key order,
// duplicate keys, number spelling) and rejects \u0000; the GIN index covers the jsonb view.
//
// Writes: every writer (of every process) takes pg_advisory_xact_lock(kAppendLock) first in
// its transaction, then numbers its facts from max(sequence_number) + 1. Commits are thus
// serialized: commit order equals sequence order, a rolled-back transaction consumes nothing,
// and a reader's snapshot always holds a gap-free prefix of the log. Appends issued
// concurrently by threads of this process share one transaction (group commit), each with
// its own range and its own conflict outcome. The facts of a group go in with one INSERT …
// SELECT FROM unnest(arrays) statement; every value is a bound parameter. The transaction
// sends NOTIFY factstr_commits, which wakes streams in other processes.
//
// Reads run on a small pool of connections: a query is one pipeline (the head, then its
// candidates, without an upper bound — what lies beyond the head is dropped), stream pages
// run in REPEATABLE READ READ ONLY transactions. SQL selects candidates (by event type, by
// jsonb containment of a predicate's top-level scalars); every candidate is verified by the
// shared matcher (CompiledQuery::matches). The store's connections prepare each statement
// once per session.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <type_traits>

#include "factstr/database/postgres_connection.hpp"
#include "factstr/env.hpp"
#include "factstr/errors.hpp"
#include "factstr/internal/backend.hpp"
#include "factstr/internal/evaluation.hpp"

namespace factstr {
namespace postgres {
namespace {

constexpr int kSchemaVersion = 1;
// Advisory lock keys (bigint): "factstr" appends and schema creation.
#define FACTSTR_APPEND_LOCK "7306916068917411841"
#define FACTSTR_SCHEMA_LOCK "7306916068917411842"
constexpr const char* kChannel = "factstr_commits";

constexpr const char* kSchema = R"sql(
CREATE TABLE factstr_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE FUNCTION factstr_payload_index(payload text) RETURNS jsonb
  LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE COST 100
  AS $$ BEGIN RETURN replace(payload, E'\\u0000', E'\\u0001')::jsonb; END $$;
CREATE TABLE facts (
  sequence_number bigint PRIMARY KEY,
  occurred_at bigint NOT NULL,
  event_type text NOT NULL,
  payload text NOT NULL,
  batch_last bigint NOT NULL
);
CREATE INDEX facts_by_type ON facts (event_type, sequence_number);
CREATE INDEX facts_by_payload ON facts USING gin (factstr_payload_index(payload) jsonb_path_ops)
  WITH (fastupdate = off);
CREATE TABLE durable_streams (
  name text PRIMARY KEY,
  position bigint NOT NULL,
  query_json text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO factstr_meta (key, value) VALUES ('format', 'factstr'), ('schema_version', '1');
)sql";

#define FACT_COLUMNS "sequence_number, occurred_at, event_type, payload, batch_last"
#define HEAD_VALUE "coalesce(max(sequence_number), 0)"
constexpr const char* kHead = "SELECT " HEAD_VALUE " FROM facts";
constexpr const char* kBeginRead =
    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT " HEAD_VALUE " FROM facts";
// The insert of a group's facts onto the head h.m (HEAD_CTE) from the array parameters $1..$4
// (occurred_at, types, payloads, batch ends relative to the head); its WHERE condition follows.
#define HEAD_CTE "WITH h AS (SELECT " HEAD_VALUE " AS m FROM facts)"
#define INSERT_ROWS_WHERE                                                                 \
    ", ins AS (INSERT INTO facts (" FACT_COLUMNS                                          \
    ") SELECT h.m + u.o, u.a, u.t, u.p, h.m + u.b FROM h, unnest($2::text[], $3::text[]," \
    " $4::bigint[], $1::bigint[]) WITH ORDINALITY AS u(t, p, b, a, o) WHERE "
// $5 the number of facts, $6 the head a conditional group's checks were made against.
constexpr const char* kInsert = HEAD_CTE INSERT_ROWS_WHERE
    "$6::bigint IS NULL OR h.m = $6::bigint)"
    " SELECT h.m, pg_notify('factstr_commits', (h.m + $5::bigint)::text) FROM h";
constexpr const char* kBatchLastAt = "SELECT batch_last FROM facts WHERE sequence_number = $1";
constexpr const char* kScanWindow =
    "SELECT " FACT_COLUMNS
    " FROM facts WHERE sequence_number > $1 AND sequence_number <= $2 ORDER BY sequence_number";
constexpr const char* kLoadCursor = "SELECT position FROM durable_streams WHERE name = $1";
constexpr const char* kSaveCursor =
    "INSERT INTO durable_streams (name, position, query_json, updated_at)"
    " VALUES ($1, $2, $3, now()) ON CONFLICT (name) DO UPDATE SET"
    " position = GREATEST(durable_streams.position, excluded.position),"
    " query_json = excluded.query_json, updated_at = excluded.updated_at";
constexpr const char* kCursors =
    "SELECT name, position, query_json FROM durable_streams ORDER BY name";
constexpr std::size_t kDescendingPage = 256;

std::string num(std::uint64_t value) {
    return std::to_string(value);
}

// Where candidates come from: event types and/or a jsonb containment; neither = every fact.
// A leaf without a containment has one type (read in order through the type index); one
// with a containment has all of its filter's types (one statement per containment, however
// many types: the GIN index finds the candidates, the types only filter them).
struct Leaf {
    std::vector<std::string> types;  // empty: any type
    std::optional<std::string> contains;
    friend bool operator<(const Leaf& a, const Leaf& b) {
        return std::tie(a.types, a.contains) < std::tie(b.types, b.contains);
    }
    friend bool operator==(const Leaf& a, const Leaf& b) {
        return a.types == b.types && a.contains == b.contains;
    }
};

struct Plan {
    std::vector<Leaf> leaves;  // empty: nothing can match
    // Every leaf selects exactly the facts the shared matcher accepts (event types, the whole
    // log, or containments of top-level scalars only): SQL alone can find the newest match.
    bool exact = true;
};

// A jsonb object every fact matching `predicate` contains (as factstr_payload_index sees it):
// the predicate's top-level strings, booleans, nulls and integers that are exact in a double.
// jsonb containment compares these exactly as the shared matcher does; nested values and
// fractions are left to the matcher. nullopt when nothing can be used. `*complete`: every
// member of the predicate is in the containment, so it selects exactly what the matcher does
// (not when U+0000 or U+0001 appear, which factstr_payload_index folds together).
std::optional<std::string> containment(const CompiledPredicate& predicate,
                                       bool* complete = nullptr) {
    if (complete) *complete = false;
    const json::Value& value = predicate.value;
    if (value.kind != json::Value::Kind::object) return std::nullopt;
    constexpr double kExact = 9007199254740992.0;  // 2^53
    std::string out = "{";
    bool any = false, all = true;
    for (std::size_t i = 0; i < value.members.size(); ++i) {
        const auto& [key, member] = value.members[i];
        bool duplicate = false;
        for (std::size_t j = 0; j < value.members.size(); ++j)
            if (j != i && value.members[j].first == key) duplicate = true;
        if (duplicate) {
            all = false;  // the matcher decides what a key given twice means
            continue;
        }
        std::string literal;
        switch (member.kind) {
            case json::Value::Kind::null:
                literal = "null";
                break;
            case json::Value::Kind::boolean:
                literal = member.boolean ? "true" : "false";
                break;
            case json::Value::Kind::string:
                json::append_quoted(literal, member.string);
                break;
            case json::Value::Kind::int64:
                if (member.int64 >= -9007199254740992LL && member.int64 <= 9007199254740992LL)
                    literal = std::to_string(member.int64);
                break;
            case json::Value::Kind::uint64:
                if (member.uint64 <= 9007199254740992ULL) literal = std::to_string(member.uint64);
                break;
            case json::Value::Kind::number:
                if (std::isfinite(member.number) && std::fabs(member.number) <= kExact &&
                    std::trunc(member.number) == member.number)
                    literal = std::to_string(static_cast<std::int64_t>(member.number));
                break;
            default:
                break;
        }
        if (literal.empty()) {
            all = false;
            continue;
        }
        if (any) out += ',';
        json::append_quoted(out, key);
        out += ':';
        out += literal;
        any = true;
    }
    if (!any) return std::nullopt;
    out += '}';
    if (complete)
        *complete = all && out.find("\\u0000") == std::string::npos &&
                    out.find("\\u0001") == std::string::npos &&
                    out.find('\0') == std::string::npos && out.find('\1') == std::string::npos;
    // The same rewrite of \u0000 as factstr_payload_index (jsonb cannot hold U+0000).
    std::size_t at = 0;
    while ((at = out.find("\\u0000", at)) != std::string::npos) {
        out.replace(at, 6, "\\u0001");
        at += 6;
    }
    return out;
}

Plan make_plan(const CompiledQuery& query) {
    Plan plan;
    if (query.matches_all()) return Plan{{Leaf{}}};
    for (const CompiledFilter& filter : query.filters()) {
        if (filter.matches_nothing()) continue;
        std::vector<std::string> contains;
        bool indexable = filter.predicates.has_value();
        if (filter.predicates) {
            for (const CompiledPredicate& p : *filter.predicates) {
                bool complete = false;
                auto c = containment(p, &complete);
                if (!c) {
                    indexable = false;
                    break;
                }
                if (!complete) plan.exact = false;
                contains.push_back(std::move(*c));
            }
        }
        if (indexable) {
            std::vector<std::string> types;
            if (filter.event_types) {
                types.assign(filter.event_types->begin(), filter.event_types->end());
                std::sort(types.begin(), types.end());
                types.erase(std::unique(types.begin(), types.end()), types.end());
            }
            for (std::string& c : contains)
                plan.leaves.push_back(Leaf{types, std::move(c)});
        } else if (filter.event_types) {
            if (filter.predicates) plan.exact = false;  // the matcher checks the payloads
            for (const std::string& type : *filter.event_types)
                plan.leaves.push_back(Leaf{{type}, std::nullopt});
        } else {
            return Plan{{Leaf{}}, !filter.predicates};
        }
    }
    std::sort(plan.leaves.begin(), plan.leaves.end());
    plan.leaves.erase(std::unique(plan.leaves.begin(), plan.leaves.end()), plan.leaves.end());
    return plan;
}

// The candidates of one leaf with after < sequence_number <= end. `head` is the snapshot's
// highest sequence number: bounds that exclude nothing are left out, so that the planner
// does not mistake them for selective conditions (on a table without statistics it
// otherwise scans the primary key and filters every fact). end == head: no upper bound.
// `command` may already hold parameters: the leaf's are numbered after them.
Command leaf_command(const Leaf& leaf, SequenceNumber after, SequenceNumber end,
                     SequenceNumber head, bool descending, Command command = {}) {
    command.sql += "SELECT " FACT_COLUMNS " FROM facts WHERE true";
    auto add = [&](std::string value) {
        command.params.push_back(std::move(value));
        return "$" + std::to_string(command.params.size());
    };
    if (after > 0) command.sql += " AND sequence_number > " + add(num(after));
    if (end < head) command.sql += " AND sequence_number <= " + add(num(end));
    if (leaf.types.size() == 1) {
        command.sql += " AND event_type = " + add(leaf.types[0]);
    } else if (!leaf.types.empty()) {
        std::string types = "{";
        for (const std::string& type : leaf.types) {
            if (types.size() > 1) types += ',';
            append_array_element(types, type);
        }
        command.sql += " AND event_type = ANY(" + add(types + "}") + "::text[])";
    }
    if (leaf.contains)
        command.sql += " AND factstr_payload_index(payload) @> " + add(*leaf.contains) + "::jsonb";
    command.sql += descending
                       ? " ORDER BY sequence_number DESC LIMIT " + std::to_string(kDescendingPage)
                       : " ORDER BY sequence_number";
    return command;
}

// The newest match of `plan`'s leaves as one SQL expression: GREATEST of each leaf's newest
// candidate (read by the same statement, and so the same plan, as a newest-first page), NULL
// when there is no leaf. Its parameters are appended to `command`'s; command.sql becomes the
// expression. Exact only for a Plan::exact plan.
Command newest_match_sql(const Plan& plan, Command command) {
    std::string newest;
    for (const Leaf& leaf : plan.leaves) {
        command.sql = "(SELECT max(sequence_number) FROM (";
        command = leaf_command(leaf, 0, 0, 0, true, std::move(command));
        newest += (newest.empty() ? "" : ", ") + command.sql + ") l)";
    }
    command.sql = newest.empty() ? std::string("NULL::bigint") : "GREATEST(" + newest + ")";
    return command;
}

// The facts of one result (FACT_COLUMNS) as candidates, in the result's order; views into the
// result. `low` < n <= `high` only. False when the sink ended the source.
bool hand_over(const PGresult* r, SequenceNumber low, SequenceNumber high, CandidateSink& sink) {
    const int n = PQntuples(r);
    std::vector<StoredFact> block;
    block.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        const auto seq = static_cast<SequenceNumber>(get_int(r, i, 0));
        if (seq <= low || seq > high) continue;
        block.push_back(StoredFact{seq, get_int(r, i, 1), get_text(r, i, 2), get_text(r, i, 3),
                                   static_cast<SequenceNumber>(get_int(r, i, 4))});
    }
    return block.empty() || sink.take(block);
}

// The PostgreSQL engine's read view on one connection. A query's first read (ascending to the
// head) needs no transaction: it sends the head and every leaf's candidates without an upper
// bound in one pipeline — commits are serialized in sequence order, so every fact at or
// below the head was committed before the head was read, and what lies beyond it is dropped.
// Any other first use opens a REPEATABLE READ READ ONLY transaction (one snapshot for a
// page). In the writer's transaction (under the append lock), the head is given and the
// first newest-first page of each context leaf may already have been read.
class PgView final : public LogView {
  public:
    using Prefetched = std::map<std::pair<const CompiledQuery*, std::size_t>, Result>;

    explicit PgView(Connection& c) : c_(c) {}
    PgView(Connection& c, SequenceNumber head, Prefetched prefetched)
        : c_(c), head_(head), head_known_(true), prefetched_(std::move(prefetched)) {}
    ~PgView() override {
        if (in_transaction_) c_.rollback_quietly();
    }
    void finish() {
        if (in_transaction_) c_.exec("COMMIT", "ending a read");
        in_transaction_ = false;
    }

    SequenceNumber head() override {
        if (!head_known_) {
            Result r = c_.exec(kBeginRead, "starting a read");
            in_transaction_ = true;
            head_ = static_cast<SequenceNumber>(get_int(r.get(), 0, 0));
            head_known_ = true;
        }
        return head_;
    }

    SequenceNumber batch_end_at(SequenceNumber position) override {
        Result r = c_.exec_params(kBatchLastAt, {num(position)}, "reading a batch boundary");
        if (PQntuples(r.get()) == 0) return position;
        return static_cast<SequenceNumber>(get_int(r.get(), 0, 0));
    }

    void ascending(const CompiledQuery& query, SequenceNumber after, SequenceNumber end,
                   CandidateSink& sink) override {
        const Plan plan = make_plan(query);
        if (end == kThroughHead && !head_known_) {
            std::vector<Command> commands{{kHead, {}}};
            for (const Leaf& leaf : plan.leaves)
                commands.push_back(leaf_command(leaf, after, 0, 0, false));
            const std::vector<Result> results = c_.pipeline(commands, "reading facts");
            head_ = static_cast<SequenceNumber>(get_int(results[0].get(), 0, 0));
            head_known_ = true;
            for (std::size_t i = 1; i < results.size(); ++i) {
                sink.begin_source(results.size() == 2, false);
                hand_over(results[i].get(), after, head_, sink);
            }
            return;
        }
        end = std::min(end, head());
        if (after >= end || plan.leaves.empty()) return;
        if (std::all_of(plan.leaves.begin(), plan.leaves.end(),
                        [](const Leaf& leaf) { return !leaf.types.empty() && !leaf.contains; })) {
            read_types_in_order(plan, after, end, sink);
            return;
        }
        for (const Leaf& leaf : plan.leaves) {
            Command command = leaf.types.empty() && !leaf.contains
                                  ? Command{kScanWindow, {num(after), num(end)}}
                                  : leaf_command(leaf, after, end, head_, false);
            Result r = c_.exec_params(command.sql, command.params, "reading facts");
            sink.begin_source(plan.leaves.size() == 1, false);
            hand_over(r.get(), after, end, sink);
        }
    }

    void newest_first(const CompiledQuery& query, SequenceNumber at_most,
                      CandidateSink& sink) override {
        const Plan plan = make_plan(query);
        for (std::size_t j = 0; j < plan.leaves.size(); ++j) {
            sink.begin_source(plan.leaves.size() == 1, false);
            SequenceNumber upper = at_most;
            auto first = prefetched_.find({&query, j});
            while (upper > sink.floor()) {
                Result page;
                if (first != prefetched_.end()) {
                    page = std::move(first->second);
                    prefetched_.erase(first);
                    first = prefetched_.end();
                } else {
                    Command command = leaf_command(plan.leaves[j], sink.floor(), upper,
                                                   head_known_ ? head_ : 0, true);
                    page =
                        c_.exec_params(command.sql, command.params, "reading the context version");
                }
                const PGresult* r = page.get();
                const int n = PQntuples(r);
                if (!hand_over(r, sink.floor(), upper, sink) ||
                    static_cast<std::size_t>(n) < kDescendingPage)
                    break;
                upper = static_cast<SequenceNumber>(get_int(r, n - 1, 0)) - 1;
            }
        }
    }

  private:
    // Event types only: one ordered read of all of them, `wanted` facts first, then growing
    // chunks until the sink has what it needs (it ends at the batch boundary after them).
    void read_types_in_order(const Plan& plan, SequenceNumber after, SequenceNumber end,
                             CandidateSink& sink) {
        std::string types = "{";
        for (const Leaf& leaf : plan.leaves) {
            if (types.size() > 1) types += ',';
            append_array_element(types, leaf.types[0]);
        }
        types += '}';
        sink.begin_source(true, false);
        std::size_t chunk = std::max<std::size_t>(sink.wanted(), 1);
        for (SequenceNumber low = after; low < end;) {
            std::string sql = "SELECT " FACT_COLUMNS
                              " FROM facts WHERE event_type = ANY($1::text[])"
                              " AND sequence_number > $2 AND sequence_number <= $3"
                              " ORDER BY sequence_number";
            if (chunk != SIZE_MAX) sql += " LIMIT " + std::to_string(chunk);
            Result r = c_.exec_params(sql, {types, num(low), num(end)}, "reading facts");
            const int n = PQntuples(r.get());
            if (!hand_over(r.get(), low, end, sink) || n == 0 ||
                static_cast<std::size_t>(n) < chunk)
                return;
            low = static_cast<SequenceNumber>(get_int(r.get(), n - 1, 0));
            chunk = std::min<std::size_t>(std::max<std::size_t>(chunk, 256), 1 << 16);
        }
    }

    Connection& c_;
    SequenceNumber head_ = 0;
    bool head_known_ = false;
    bool in_transaction_ = false;
    Prefetched prefetched_;
};

// The facts of a group as the four array parameters of kInsert; batch ends are relative to
// the head the group is inserted onto.
struct Rows {
    std::string types = "{", payloads = "{", lasts = "{", occurred = "{";
    std::size_t total = 0;

    void add(const std::vector<PreparedEvent>& events, const std::string& now) {
        const std::string batch_end = std::to_string(total + events.size());
        for (const PreparedEvent& event : events) {
            if (total) {
                types += ',';
                payloads += ',';
                lasts += ',';
                occurred += ',';
            }
            append_array_element(types, event.event_type);
            append_array_element(payloads, event.payload.compact);
            lasts += batch_end;
            occurred += event.occurred_at
                            ? std::to_string(event.occurred_at->time_since_epoch().count())
                            : now;
            ++total;
        }
    }
    // kInsert's parameters $1..$6.
    std::vector<std::optional<std::string>> params(std::optional<std::string> onto_head) && {
        return {std::move(occurred) + '}',
                std::move(types) + '}',
                std::move(payloads) + '}',
                std::move(lasts) + '}',
                num(total),
                std::move(onto_head)};
    }
};

void refuse_nul(std::string_view text, std::string_view what) {
    if (text.find('\0') != std::string_view::npos)
        throw InvalidInput(
            ErrorCode::invalid_argument,
            std::string(what) + " contains a NUL character, which PostgreSQL cannot store");
}

class PostgresBackend final : public Backend {
  public:
    PostgresBackend(Conninfo info, int poll_interval_ms)
        : info_(std::move(info)), poll_interval_ms_(std::max(1, poll_interval_ms)) {
        with_connection([&](Connection& c) {
            ensure_schema(c);
            // The log size at the last ANALYZE (reltuples is -1 before the first one).
            Result r = c.exec(
                "SELECT greatest(reltuples, 0)::bigint FROM pg_class"
                " WHERE oid = 'facts'::regclass",
                "reading the planner's statistics");
            if (PQntuples(r.get()) == 1)
                analyzed_head_.store(static_cast<SequenceNumber>(get_int(r.get(), 0, 0)));
            return 0;
        });
    }

    ~PostgresBackend() override {
        std::lock_guard lock(analyzer_mutex_);
        if (analyzer_.joinable()) analyzer_.join();
    }

    std::string describe() const override { return info_.description(); }
    DatabaseLocation location() const override {
        return {DatabaseLocation::Kind::postgres, info_.to_conninfo(), 60000, nullptr};
    }

    void read(const std::function<void(LogView&)>& fn) override {
        with_connection([&](Connection& c) {
            PgView view(c);
            fn(view);
            view.finish();
            return 0;
        });
    }

    // Capability of the port: a conditional append alone in its group whose context SQL
    // decides exactly (Plan::exact) is checked and inserted by one statement.
    bool decides_append_if_in_statement(const CompiledQuery& context) const override {
        return make_plan(context).exact;
    }

    std::optional<SequenceNumber> statement_context_version(const CompiledQuery& context) override {
        return with_connection([&](Connection& c) -> std::optional<SequenceNumber> {
            Command command = newest_match_sql(make_plan(context), Command{});
            command.sql = "SELECT " + command.sql;
            Result r = c.exec_params(command.sql, command.params, "reading the context version");
            if (PQgetisnull(r.get(), 0, 0)) return std::nullopt;
            return static_cast<SequenceNumber>(get_int(r.get(), 0, 0));
        });
    }

    SequenceNumber head() override {
        return with_connection([&](Connection& c) {
            Result r = c.exec(kHead, "reading the head");
            return static_cast<SequenceNumber>(get_int(r.get(), 0, 0));
        });
    }

    std::optional<std::uint64_t> storage_bytes() override {
        return with_connection([&](Connection& c) {
            Result r =
                c.exec("SELECT pg_database_size(current_database())", "reading the database size");
            return std::optional<std::uint64_t>(static_cast<std::uint64_t>(get_int(r.get(), 0, 0)));
        });
    }

    std::optional<SequenceNumber> load_cursor(std::string_view name) override {
        refuse_nul(name, "a durable stream name");
        return with_connection([&](Connection& c) -> std::optional<SequenceNumber> {
            Result r = c.exec_params(kLoadCursor, {std::string(name)}, "loading a cursor");
            if (PQntuples(r.get()) == 0) return std::nullopt;
            return static_cast<SequenceNumber>(get_int(r.get(), 0, 0));
        });
    }

    void save_cursor(std::string_view name, SequenceNumber position,
                     std::string_view query_json) override {
        refuse_nul(name, "a durable stream name");
        // An upsert that never moves the cursor backwards: repeating it is harmless.
        with_connection([&](Connection& c) {
            c.exec_params(kSaveCursor, {std::string(name), num(position), std::string(query_json)},
                          "saving a cursor");
            return 0;
        });
    }

    std::vector<DurableCursorInfo> cursors() override {
        return with_connection([&](Connection& c) {
            Result r = c.exec(kCursors, "listing cursors");
            std::vector<DurableCursorInfo> out;
            for (int i = 0; i < PQntuples(r.get()); ++i)
                out.push_back(DurableCursorInfo{std::string(get_text(r.get(), i, 0)),
                                                static_cast<SequenceNumber>(get_int(r.get(), i, 1)),
                                                std::string(get_text(r.get(), i, 2))});
            return out;
        });
    }

    std::chrono::milliseconds external_poll_interval() const override {
        return std::chrono::milliseconds(poll_interval_ms_);
    }

    // LISTEN factstr_commits on a connection of its own; a notification (from another
    // process) is only a wake-up: the head is read from the log. Once a second the head is
    // read anyway, in case a notification was lost with a connection.
    std::optional<SequenceNumber> poll_external_commits() override {
        std::lock_guard lock(poll_mutex_);
        bool wake = false;
        if (!listener_ || !listener_->ok()) {
            if (!listener_)
                listener_ = std::make_unique<Connection>(info_);
            else
                listener_->ensure_ok();
            listener_->exec("LISTEN factstr_commits", "listening for commits");
            wake = true;
        }
        PGconn* conn = listener_->handle();
        if (PQconsumeInput(conn) != 1 || !listener_->ok()) {
            listener_->ensure_ok();
            listener_->exec("LISTEN factstr_commits", "listening for commits");
            wake = true;
            conn = listener_->handle();
        }
        const int own_pid = writer_pid_.load();
        while (PGnotify* notify = PQnotifies(conn)) {
            if (notify->be_pid != own_pid) wake = true;
            PQfreemem(notify);
        }
        const auto now = factstr::Env::system().monotonic_now();
        if (!wake && now - last_poll_head_ < std::chrono::seconds(1)) return std::nullopt;
        last_poll_head_ = now;
        return head();
    }

  private:
    // ---- schema --------------------------------------------------------------------------

    void ensure_schema(Connection& c) {
        if (validate_existing(c)) return;
        try {
            c.exec("BEGIN", "creating the schema");
            c.exec("SELECT pg_advisory_xact_lock(" FACTSTR_SCHEMA_LOCK ")", "creating the schema");
            if (!validate_existing(c)) {
                const char* encoding = PQparameterStatus(c.handle(), "server_encoding");
                if (!encoding || std::string_view(encoding) != "UTF8")
                    throw StoreError(ErrorCode::schema_mismatch,
                                     describe() + ": the database encoding is " +
                                         (encoding ? encoding : "unknown") +
                                         "; factstr needs a UTF8 database (bootstrap creates one); "
                                         "it was left untouched");
                c.exec(kSchema, "creating the schema");
            }
            c.exec("COMMIT", "creating the schema");
        } catch (...) {
            c.rollback_quietly();
            throw;
        }
    }

    // True when the database holds a factstr schema of our version; false when it holds none.
    // Throws for anything else, without changing the database.
    bool validate_existing(Connection& c) {
        // pg_class is read with the statement's snapshot (to_regclass would consult caches
        // that may not yet show a schema another process just committed).
        Result tables = c.exec(
            "SELECT bool_or(relname = 'factstr_meta'), bool_or(relname = 'facts'),"
            " bool_or(relname = 'durable_streams') FROM pg_class"
            " WHERE relname IN ('factstr_meta', 'facts', 'durable_streams')"
            " AND relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())",
            "reading the schema");
        const bool meta = get_text(tables.get(), 0, 0) == "t";
        const bool facts = get_text(tables.get(), 0, 1) == "t";
        const bool streams = get_text(tables.get(), 0, 2) == "t";
        if (!meta) {
            if (facts || streams)
                throw StoreError(ErrorCode::schema_mismatch,
                                 describe() + " has a table named " +
                                     (facts ? "facts" : "durable_streams") +
                                     " but no factstr_meta: it is not a factstr store; it was left "
                                     "untouched");
            return false;
        }
        std::string format, version;
        try {
            Result rows =
                c.exec("SELECT key::text, value::text FROM factstr_meta", "reading factstr_meta");
            for (int i = 0; i < PQntuples(rows.get()); ++i) {
                if (get_text(rows.get(), i, 0) == "format") format = get_text(rows.get(), i, 1);
                if (get_text(rows.get(), i, 0) == "schema_version")
                    version = get_text(rows.get(), i, 1);
            }
        } catch (const PgError& e) {
            if (e.connection_lost()) throw;
            throw StoreError(ErrorCode::schema_mismatch,
                             describe() + ": factstr_meta is not a factstr table (" + e.what() +
                                 "); the database was left untouched");
        }
        if (format != "factstr")
            throw StoreError(ErrorCode::schema_mismatch,
                             describe() + " is not a factstr store (format '" + format +
                                 "' in factstr_meta); it was left untouched");
        if (version != std::to_string(kSchemaVersion))
            throw StoreError(ErrorCode::schema_mismatch,
                             describe() + " has factstr schema version " + version +
                                 ", this build reads version " + std::to_string(kSchemaVersion) +
                                 "; it was left untouched");
        return true;
    }

    // ---- reading -------------------------------------------------------------------------

    // Runs `fn` on a pooled connection. Reads are repeated (at most twice) when the
    // connection dropped: they change nothing, and the log is the truth.
    template <class Fn>
    std::invoke_result_t<Fn&, Connection&> with_connection(Fn&& fn) {
        for (int attempt = 0;; ++attempt) {
            std::unique_ptr<Connection> c;
            {
                std::lock_guard lock(pool_mutex_);
                if (!idle_.empty()) {
                    c = std::move(idle_.back());
                    idle_.pop_back();
                }
            }
            struct Return {
                PostgresBackend& self;
                std::unique_ptr<Connection>& c;
                ~Return() {
                    if (!c) return;
                    std::lock_guard lock(self.pool_mutex_);
                    if (self.idle_.size() < 8) self.idle_.push_back(std::move(c));
                }
            } give_back{*this, c};
            try {
                if (!c)
                    c = std::make_unique<Connection>(info_, true);
                else
                    c->ensure_ok();
                return fn(*c);
            } catch (const PgError& e) {
                if (!e.connection_lost() || attempt >= 2) throw;
            }
        }
    }

    // ---- planner statistics ----------------------------------------------------------------

    // A table that grows fast (a fresh store being filled) outruns autovacuum, whose next
    // ANALYZE may be a minute away; until then the planner guesses from no statistics and
    // reads contexts through the event-type index, checking the payload of every fact of that
    // type. So the log's statistics are refreshed each time it has doubled since the last
    // ANALYZE this store knows of (from 1000 facts on: about 10 times on the way to a million).
    // It runs on a thread of its own, on a pooled connection, one at a time: ANALYZE of a
    // million facts takes about a second, which no append should wait for (closing the store
    // waits for one that is running).
    void refresh_statistics(SequenceNumber head) {
        SequenceNumber analyzed = analyzed_head_.load();
        if (head < 1000 || head < 2 * analyzed) return;
        std::lock_guard lock(analyzer_mutex_);
        if (analyzing_.load()) return;  // a later append starts the next one
        if (!analyzed_head_.compare_exchange_strong(analyzed, head)) return;
        if (analyzer_.joinable()) analyzer_.join();  // finished: analyzing_ is false
        analyzing_.store(true);
        analyzer_ = env().start_thread("factstr-analyze", [this] {
            try {
                with_connection([&](Connection& c) {
                    c.exec("ANALYZE facts", "refreshing the planner's statistics");
                    return 0;
                });
            } catch (const std::exception&) {
                // Only a plan is at stake; autovacuum analyzes the table eventually.
            }
            analyzing_.store(false);
        });
    }

    // ---- writing -------------------------------------------------------------------------

    static void check_events(const std::vector<PreparedEvent>& events) {
        for (const PreparedEvent& event : events)
            refuse_nul(event.event_type, "an event type");
    }

    // Returns the new head when anything was committed, else 0.
    SequenceNumber commit_group(std::vector<WriteRequest*>& requests) override {
        std::vector<WriteRequest*> group;
        for (WriteRequest* r : requests) {
            try {
                check_events(r->events);
                group.push_back(r);
            } catch (...) {
                r->error = std::current_exception();
            }
        }
        if (group.empty()) return 0;
        std::lock_guard lock(write_mutex_);
        for (int attempt = 0;; ++attempt) {
            for (WriteRequest* r : group) {
                r->result.reset();
                r->error = nullptr;
            }
            bool commit_sent = false;
            try {
                if (!writer_)
                    writer_ = std::make_unique<Connection>(info_, true);
                else
                    writer_->ensure_ok();
                writer_pid_.store(PQbackendPID(writer_->handle()));
                const SequenceNumber head = write_group(group, commit_sent);
                if (head) refresh_statistics(head);
                return head;
            } catch (const PgError& e) {
                if (commit_sent && e.connection_lost()) {
                    // The commit may or may not have happened: never retried.
                    auto error = std::make_exception_ptr(StoreError(
                        ErrorCode::outcome_unknown,
                        describe() +
                            ": the connection dropped while the commit was in flight; the append "
                            "may or may not be in the log (check before repeating it): " +
                            e.what()));
                    for (WriteRequest* r : group)
                        if (!r->result || r->result->committed()) {
                            r->result.reset();
                            r->error = error;
                        }
                    return 0;
                }
                if (!commit_sent && e.connection_lost() && attempt == 0)
                    continue;  // nothing written
                writer_->rollback_quietly();
                fail_all(group, std::current_exception());
                return 0;
            } catch (...) {
                if (writer_) writer_->rollback_quietly();
                fail_all(group, std::current_exception());
                return 0;
            }
        }
    }

    static void fail_all(std::vector<WriteRequest*>& group, std::exception_ptr error) {
        for (WriteRequest* r : group) {
            r->result.reset();
            r->error = error;
        }
    }

    // One transaction per group, in at most two round trips: [BEGIN, lock, (head and, per
    // conditional request, the newest candidates of its context)] and [INSERT, COMMIT]; an
    // unconditional group sends all of it at once. Under the append lock nothing else is
    // written, so what the first round trip read still holds when the second one commits.
    SequenceNumber write_group(std::vector<WriteRequest*>& group, bool& commit_sent) {
        if (group.size() == 1 && group[0]->context &&
            decides_append_if_in_statement(*group[0]->context)) {
            if (auto head =
                    write_checked_in_sql(*group[0], make_plan(*group[0]->context), commit_sent))
                return *head;
            commit_sent = false;  // its transaction committed nothing
        }
        Connection& c = *writer_;
        const bool conditional = std::any_of(group.begin(), group.end(),
                                             [](WriteRequest* r) { return r->context != nullptr; });
        std::vector<Command> commands{
            {"BEGIN", {}}, {"SELECT pg_advisory_xact_lock(" FACTSTR_APPEND_LOCK ")", {}}};
        SequenceNumber db_head = 0;
        PgView::Prefetched prefetched;
        if (conditional) {
            // The head and, per context, the first page of each leaf's newest candidates.
            commands.push_back({kHead, {}});
            std::vector<std::pair<const CompiledQuery*, std::size_t>> pages;
            for (WriteRequest* r : group) {
                if (!r->context) continue;
                const Plan plan = make_plan(*r->context);
                for (std::size_t j = 0; j < plan.leaves.size(); ++j) {
                    commands.push_back(leaf_command(plan.leaves[j], 0, 0, 0, true));
                    pages.emplace_back(r->context, j);
                }
            }
            std::vector<Result> results = c.pipeline(commands, "starting an append");
            db_head = static_cast<SequenceNumber>(get_int(results[2].get(), 0, 0));
            for (std::size_t i = 0; i < pages.size(); ++i)
                prefetched.emplace(pages[i], std::move(results[3 + i]));
            commands.clear();
        }
        // Under the append lock nothing else is written, so what the first round trip read
        // still holds when the second one commits.
        PgView view(c, db_head, std::move(prefetched));
        const std::vector<AcceptedWrite> accepted = decide_group(view, db_head, group);
        if (accepted.empty()) {
            if (conditional) c.exec("ROLLBACK", "ending an append");
            return 0;
        }
        Rows rows;
        const std::string now = std::to_string(now_micros());
        for (const AcceptedWrite& w : accepted)
            rows.add(w.request->events, now);
        const std::size_t total = rows.total;
        // A conditional group inserts only onto the head its checks were made against.
        commands.push_back(Command{
            kInsert, std::move(rows).params(conditional ? std::optional<std::string>(num(db_head))
                                                        : std::nullopt)});
        commands.push_back(Command{"COMMIT", {}});
        std::vector<Result> results = send_commit(commands, commit_sent);
        const auto base =
            static_cast<SequenceNumber>(get_int(results[results.size() - 2].get(), 0, 0));
        if (conditional && base != db_head)
            throw StoreError(ErrorCode::corrupt_database,
                             describe() +
                                 ": facts were written without the factstr append lock; this "
                                 "append was not written");
        // decide_group numbered the ranges from db_head (0 for an unconditional group, which
        // learns its base from the insert).
        for (const AcceptedWrite& w : accepted) {
            const std::size_t n = w.request->events.size();
            const SequenceNumber first = base + (w.first_sequence_number - db_head);
            w.request->result = AppendResult{first, first + n - 1, n};
        }
        return base + total;
    }

    // Sends a pipeline that ends in COMMIT. commit_sent turns false when the server stopped
    // before the COMMIT (or it was never sent): then nothing was committed. An error in answer
    // to the COMMIT itself leaves it open (a session ended just after its commit is durable,
    // or while it waits for a synchronous standby, answers so).
    std::vector<Result> send_commit(const std::vector<Command>& commands, bool& commit_sent) {
        commit_sent = true;
        try {
            return writer_->pipeline(commands, "appending");
        } catch (const PgError& e) {
            if (e.failed_command() && *e.failed_command() + 1 < commands.size())
                commit_sent = false;
            throw;
        }
    }

    // One conditional append whose context SQL decides exactly (Plan::exact): the check and
    // the insert are one statement, [BEGIN, lock, INSERT … WHERE <the newest match> IS NOT
    // DISTINCT FROM <expected>, COMMIT], one round trip instead of two. The newest match of
    // each leaf is read by the same statement (and so the same plan) that the two-step check
    // reads its first page with. nullopt when the check failed and nothing was inserted: the
    // caller then checks the usual way, which names the conflict.
    std::optional<SequenceNumber> write_checked_in_sql(WriteRequest& request, const Plan& plan,
                                                       bool& commit_sent) {
        Rows rows;
        rows.add(request.events, std::to_string(now_micros()));
        const std::size_t total = rows.total;
        Command insert{"", std::move(rows).params(
                               request.expected ? std::optional<std::string>(num(*request.expected))
                                                : std::nullopt)};
        insert = newest_match_sql(plan, std::move(insert));
        // v.c, the newest match: the rows go in only when it is the expected version.
        insert.sql = HEAD_CTE ", v AS (SELECT " + insert.sql +
                     " AS c)" INSERT_ROWS_WHERE
                     "(SELECT c FROM v) IS NOT DISTINCT FROM $6::bigint RETURNING 1)"
                     " SELECT h.m, n.c, CASE WHEN n.c > 0 THEN pg_notify('factstr_commits',"
                     " (h.m + $5::bigint)::text) END FROM h, (SELECT count(*) AS c FROM ins) n";
        std::vector<Command> commands{{"BEGIN", {}},
                                      {"SELECT pg_advisory_xact_lock(" FACTSTR_APPEND_LOCK ")", {}},
                                      std::move(insert),
                                      {"COMMIT", {}}};
        std::vector<Result> results = send_commit(commands, commit_sent);
        const PGresult* row = results[2].get();
        if (get_int(row, 0, 1) == 0) return std::nullopt;
        const auto base = static_cast<SequenceNumber>(get_int(row, 0, 0));
        request.result = AppendResult{base + 1, base + total, total};
        return base + total;
    }

    Conninfo info_;
    int poll_interval_ms_;

    std::mutex write_mutex_;
    std::unique_ptr<Connection> writer_;
    std::atomic<int> writer_pid_{0};
    std::atomic<SequenceNumber> analyzed_head_{0};

    std::mutex pool_mutex_;
    std::vector<std::unique_ptr<Connection>> idle_;

    std::mutex poll_mutex_;
    std::unique_ptr<Connection> listener_;
    std::chrono::steady_clock::time_point last_poll_head_{};

    std::mutex analyzer_mutex_;
    std::atomic<bool> analyzing_{false};
    std::thread analyzer_;  // joined by the destructor, before the pool it uses goes
};

bool valid_database_name(std::string_view name) {
    if (name.empty() || name.size() > 63) return false;
    auto letter = [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    };
    if (!letter(name[0])) return false;
    return std::all_of(name.begin(), name.end(),
                       [&](char c) { return letter(c) || (c >= '0' && c <= '9'); });
}

}  // namespace
}  // namespace postgres

std::unique_ptr<Backend> make_postgres_backend(PostgresOptions options) {
    return std::make_unique<postgres::PostgresBackend>(postgres::Conninfo::parse(options.conninfo),
                                                       options.poll_interval_ms);
}

std::unique_ptr<Backend> make_postgres_backend(std::string conninfo) {
    PostgresOptions options;
    options.conninfo = std::move(conninfo);
    return make_postgres_backend(std::move(options));
}

std::unique_ptr<Backend> bootstrap_postgres(std::string_view server_url,
                                            std::string_view database_name) {
    using namespace postgres;
    if (!valid_database_name(database_name))
        throw InvalidInput(ErrorCode::invalid_argument,
                           "invalid database name '" + std::string(database_name) +
                               "': use letters, digits and _ (not first), at most 63 characters");
    const Conninfo server = Conninfo::parse(server_url);
    {
        Connection c(server);
        Result r = c.exec_params("SELECT 1 FROM pg_database WHERE datname = $1",
                                 {std::string(database_name)}, "looking up the database");
        if (PQntuples(r.get()) == 0) {
            // The name is validated above: quoting it as an identifier is safe.
            const std::string create =
                "CREATE DATABASE \"" + std::string(database_name) +
                "\" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'";
            try {
                c.exec(create.c_str(), "creating the database");
            } catch (const PgError& e) {
                // Another process created it first.
                if (e.sqlstate() != "42P04" && e.sqlstate() != "23505") throw;
            }
        }
    }
    PostgresOptions options;
    return std::make_unique<PostgresBackend>(server.with("dbname", std::string(database_name)),
                                             options.poll_interval_ms);
}

}  // namespace factstr
