// The SQLite backend: the embedded, persistent default.
//
// Schema (version 1): facts(sequence_number INTEGER PRIMARY KEY, …, batch_last) keeps every
// fact with the last sequence number of the append it came in (the batch boundary);
// event_types interns type names; payload_keys(key_hash, sequence_number) indexes every
// top-level scalar of every payload; durable_streams keeps cursors.
//
// The payload key index is written in bulk, not per append: a random secondary-index insert
// per key would dirty a page per key and multiply what every commit writes. payload_keys
// covers the facts up to index_state.keys_indexed_through; each process keeps the facts
// after that (the tail, at most a few thousand) in an in-memory key map built from the log,
// and a writer folds the tail into payload_keys, sorted, once it holds kIndexBatch facts.
// A lookup is the union of both, so it still costs about the number of matching facts.
//
// Writes go through one writer connection. Appends issued concurrently by threads of this
// process are queued and committed together in one transaction (group commit: one fsync),
// each keeping its own range and conflict outcome. Across processes, BEGIN IMMEDIATE makes
// the conditional check and the write one atomic step.
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <type_traits>
#include <unordered_map>

#include "../group_commit.hpp"
#include "factstr/backend.hpp"
#include "factstr/errors.hpp"
#include "sqlite_connection.hpp"

namespace factstr {
namespace sqlite {
namespace {

constexpr int kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE factstr_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE event_types (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE facts (
  sequence_number INTEGER PRIMARY KEY,
  occurred_at INTEGER NOT NULL,
  type_id INTEGER NOT NULL,
  payload TEXT NOT NULL,
  batch_last INTEGER NOT NULL
);
CREATE INDEX facts_by_type ON facts (type_id, sequence_number);
CREATE TABLE payload_keys (
  key_hash INTEGER NOT NULL,
  sequence_number INTEGER NOT NULL,
  PRIMARY KEY (key_hash, sequence_number)
) WITHOUT ROWID;
CREATE TABLE index_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  keys_indexed_through INTEGER NOT NULL
);
INSERT INTO index_state (id, keys_indexed_through) VALUES (1, 0);
CREATE TABLE durable_streams (
  name TEXT PRIMARY KEY,
  position INTEGER NOT NULL,
  query_json TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO factstr_meta (key, value) VALUES ('format', 'factstr'), ('schema_version', '1');
)sql";

#define FACT_COLUMNS "sequence_number, occurred_at, type_id, payload, batch_last"
constexpr const char* kBegin = "BEGIN";
constexpr const char* kBeginImmediate = "BEGIN IMMEDIATE";
constexpr const char* kCommit = "COMMIT";
constexpr const char* kRollback = "ROLLBACK";
constexpr const char* kHead = "SELECT max(sequence_number) FROM facts";
constexpr const char* kScanAsc =
    "SELECT " FACT_COLUMNS
    " FROM facts WHERE sequence_number > ?1 AND sequence_number <= ?2 ORDER BY sequence_number";
constexpr const char* kScanDesc = "SELECT " FACT_COLUMNS
                                  " FROM facts WHERE sequence_number > ?1 AND sequence_number <= ?2"
                                  " ORDER BY sequence_number DESC";
constexpr const char* kTypeAsc =
    "SELECT " FACT_COLUMNS
    " FROM facts WHERE type_id = ?3 AND sequence_number > ?1 AND sequence_number <= ?2"
    " ORDER BY sequence_number";
constexpr const char* kTypeCount =
    "SELECT count(*) FROM facts INDEXED BY facts_by_type"
    " WHERE type_id = ?3 AND sequence_number > ?1 AND sequence_number <= ?2";
constexpr const char* kTypeDesc =
    "SELECT " FACT_COLUMNS
    " FROM facts WHERE type_id = ?3 AND sequence_number > ?1 AND sequence_number <= ?2"
    " ORDER BY sequence_number DESC";
constexpr const char* kKeyAsc =
    "SELECT f.sequence_number, f.occurred_at, f.type_id, f.payload, f.batch_last"
    " FROM payload_keys k JOIN facts f ON f.sequence_number = k.sequence_number"
    " WHERE k.key_hash = ?3 AND k.sequence_number > ?1 AND k.sequence_number <= ?2"
    " ORDER BY k.sequence_number";
constexpr const char* kKeyDesc =
    "SELECT f.sequence_number, f.occurred_at, f.type_id, f.payload, f.batch_last"
    " FROM payload_keys k JOIN facts f ON f.sequence_number = k.sequence_number"
    " WHERE k.key_hash = ?3 AND k.sequence_number > ?1 AND k.sequence_number <= ?2"
    " ORDER BY k.sequence_number DESC";
constexpr const char* kKeyProbe =
    "SELECT count(*) FROM (SELECT 1 FROM payload_keys WHERE key_hash = ?1 LIMIT 512)";
constexpr const char* kBatchLastAt = "SELECT batch_last FROM facts WHERE sequence_number = ?1";
constexpr const char* kInsertFact =
    "INSERT INTO facts (" FACT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr const char* kInsertKey =
    "INSERT OR IGNORE INTO payload_keys (key_hash, sequence_number) VALUES (?1, ?2)";
constexpr const char* kTypeByName = "SELECT id FROM event_types WHERE name = ?1";
constexpr const char* kTypeById = "SELECT name FROM event_types WHERE id = ?1";
constexpr const char* kInsertType = "INSERT INTO event_types (name) VALUES (?1)";
constexpr const char* kLoadCursor = "SELECT position FROM durable_streams WHERE name = ?1";
constexpr const char* kSaveCursor =
    "INSERT INTO durable_streams (name, position, query_json, updated_at) VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT (name) DO UPDATE SET position = max(position, excluded.position),"
    " query_json = excluded.query_json, updated_at = excluded.updated_at";
constexpr const char* kCursors =
    "SELECT name, position, query_json FROM durable_streams ORDER BY name";
constexpr const char* kDataVersion = "PRAGMA data_version";
constexpr const char* kIndexedThrough = "SELECT keys_indexed_through FROM index_state";
constexpr const char* kSetIndexedThrough = "UPDATE index_state SET keys_indexed_through = ?1";
constexpr const char* kFactAt = "SELECT " FACT_COLUMNS " FROM facts WHERE sequence_number = ?1";
constexpr const char* kPayloadsAsc =
    "SELECT sequence_number, payload FROM facts"
    " WHERE sequence_number > ?1 AND sequence_number <= ?2 ORDER BY sequence_number";

// Facts in the in-memory tail before a writer folds them into payload_keys.
constexpr SequenceNumber kIndexBatch = 16384;
#undef FACT_COLUMNS

std::int64_t now_micros() {
    return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now())
        .time_since_epoch()
        .count();
}

struct Row {
    SequenceNumber sequence_number;
    std::int64_t occurred_at;
    std::int64_t type_id;
    std::string payload;
    SequenceNumber batch_last;
};

// Where a query's candidates come from: a type, a payload key, or every fact.
struct Leaf {
    enum class Kind { scan, type, key } kind;
    std::int64_t value = 0;
};

struct Plan {
    std::vector<Leaf> leaves;  // empty: nothing can match
};

class SqliteBackend final : public Backend {
  public:
    explicit SqliteBackend(SqliteOptions options) : options_(std::move(options)) {
        refuse_foreign_file();
        writer_ = open_connection(SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
        ensure_schema(*writer_);
        writer_->exec("PRAGMA journal_mode=WAL");
        writer_->exec(options_.sync == SqliteOptions::Sync::full ? "PRAGMA synchronous=FULL"
                                                                 : "PRAGMA synchronous=NORMAL");
    }

    std::string describe() const override { return "sqlite:" + options_.path; }
    DatabaseLocation location() const override {
        return {DatabaseLocation::Kind::sqlite, options_.path, options_.busy_timeout_ms};
    }

    AppendResult append(std::vector<PreparedEvent>&& events) override {
        return *submit(events, nullptr, std::nullopt).append_result();
    }

    AppendIfResult append_if(std::vector<PreparedEvent>&& events, const CompiledQuery& context,
                             std::optional<SequenceNumber> expected) override {
        return submit(events, &context, expected);
    }

    QueryResult query(const CompiledQuery& query) override {
        return with_reader([&](Connection& db) {
            ReadTransaction transaction(db);
            const SequenceNumber end = head_on(db);
            const SequenceNumber indexed = indexed_through_on(db);
            refresh_tail(db, indexed, end);
            const SequenceNumber after = std::min(query.min_sequence_number().value_or(0), end);
            Plan plan = make_plan(db, query);
            QueryResult result;
            for (Row& row : collect(db, plan, query, after, end, indexed))
                result.event_records.push_back(to_record(db, std::move(row)));
            if (!result.event_records.empty()) {
                result.last_returned_sequence_number = result.event_records.back().sequence_number;
                result.current_context_version = result.last_returned_sequence_number;
            } else {
                result.current_context_version = highest_match(db, plan, query, after, indexed);
            }
            return result;
        });
    }

    BatchPage read_batches(SequenceNumber after, const CompiledQuery& filter,
                           std::size_t max_facts) override {
        return with_reader([&](Connection& db) {
            ReadTransaction transaction(db);
            const SequenceNumber end = head_on(db);
            BatchPage page;
            page.scanned_through = std::max(after, end);
            if (after >= end) return page;
            SequenceNumber window_end = end;
            if (!filter.matches_all()) {
                // Bound the work of one page by a window of sequence numbers, widened to the
                // end of the batch it cuts into.
                const SequenceNumber window = std::max<SequenceNumber>(max_facts * 16, 65536);
                if (end - after > window) window_end = batch_last_at(db, after + window);
            }
            page.scanned_through = window_end;
            Plan plan = make_plan(db, filter);
            std::size_t collected = 0;
            auto add = [&](Row&& row) {
                if (page.batches.empty() ||
                    page.batches.back().last_sequence_number != row.batch_last) {
                    if (collected >= max_facts && !page.batches.empty()) {
                        page.scanned_through = page.batches.back().last_sequence_number;
                        return false;
                    }
                    page.batches.push_back(CommittedBatch{row.batch_last, {}});
                }
                page.batches.back().records.push_back(to_record(db, std::move(row)));
                ++collected;
                return true;
            };
            if (filter.matches_all()) {
                Resetting scan(db.statement(kScanAsc));
                scan->bind(1, static_cast<std::int64_t>(after))
                    .bind(2, static_cast<std::int64_t>(window_end));
                while (scan->step())
                    if (!add(read_row(*scan))) break;
            } else {
                const SequenceNumber indexed = indexed_through_on(db);
                refresh_tail(db, indexed, end);
                SequenceNumber stopped_at = window_end;
                for (Row& row :
                     collect(db, plan, filter, after, window_end, indexed, max_facts, &stopped_at))
                    if (!add(std::move(row))) break;
                page.scanned_through = std::min(page.scanned_through, stopped_at);
            }
            return page;
        });
    }

    SequenceNumber head() override {
        return with_reader([&](Connection& db) { return head_on(db); });
    }

    std::optional<SequenceNumber> load_cursor(std::string_view name) override {
        return with_reader([&](Connection& db) -> std::optional<SequenceNumber> {
            Resetting load(db.statement(kLoadCursor));
            load->bind(1, name);
            if (!load->step()) return std::nullopt;
            return static_cast<SequenceNumber>(load->integer(0));
        });
    }

    void save_cursor(std::string_view name, SequenceNumber position,
                     std::string_view query_json) override {
        std::lock_guard lock(write_mutex_);
        Resetting save(writer_->statement(kSaveCursor));
        save->bind(1, name)
            .bind(2, static_cast<std::int64_t>(position))
            .bind(3, query_json)
            .bind(4, now_micros());
        save->run();
    }

    std::vector<DurableCursorInfo> cursors() override {
        return with_reader([&](Connection& db) {
            std::vector<DurableCursorInfo> out;
            Resetting list(db.statement(kCursors));
            while (list->step())
                out.push_back(DurableCursorInfo{std::string(list->text(0)),
                                                static_cast<SequenceNumber>(list->integer(1)),
                                                std::string(list->text(2))});
            return out;
        });
    }

    std::optional<std::uint64_t> storage_bytes() override {
        // The database file and its write-ahead log (not the shared-memory index).
        std::uint64_t total = 0;
        for (const char* suffix : {"", "-wal"}) {
            struct stat info {};
            if (::stat((options_.path + suffix).c_str(), &info) == 0)
                total += static_cast<std::uint64_t>(info.st_size);
        }
        return total;
    }

    std::chrono::milliseconds external_poll_interval() const override {
        return std::chrono::milliseconds(options_.poll_interval_ms);
    }

    std::optional<SequenceNumber> poll_external_commits() override {
        std::lock_guard lock(poll_mutex_);
        if (!poller_) poller_ = open_connection(SQLITE_OPEN_READWRITE);
        Resetting version(poller_->statement(kDataVersion));
        version->step();
        const std::int64_t current = version->integer(0);
        if (current == last_data_version_) return std::nullopt;
        last_data_version_ = current;
        return head_on(*poller_);
    }

  private:
    // ---- opening -------------------------------------------------------------------------

    std::unique_ptr<Connection> open_connection(int flags) {
        auto connection =
            std::make_unique<Connection>(options_.path, flags, options_.busy_timeout_ms);
        connection->exec("PRAGMA cache_size=-32768");
        return connection;
    }

    // A non-empty file that is not a SQLite database is never opened for writing.
    void refuse_foreign_file() {
        struct stat info {};
        if (::stat(options_.path.c_str(), &info) != 0 || info.st_size == 0) return;
        char header[16] = {};
        std::ifstream file(options_.path, std::ios::binary);
        file.read(header, sizeof header);
        if (file.gcount() != sizeof header || std::memcmp(header, "SQLite format 3", 16) != 0)
            throw StoreError(ErrorCode::schema_mismatch,
                             "sqlite:" + options_.path +
                                 " is not a SQLite database (and so not a factstr store); "
                                 "it was left untouched");
    }

    void ensure_schema(Connection& db) {
        if (validate_existing(db)) return;
        db.exec("BEGIN IMMEDIATE");
        try {
            if (!validate_existing(db)) db.exec(kSchema);
            db.exec("COMMIT");
        } catch (...) {
            sqlite3_exec(db.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
            throw;
        }
    }

    // True when the file holds a factstr schema of our version; false when it is empty.
    // Throws for anything else, without changing the file.
    bool validate_existing(Connection& db) {
        std::vector<std::string> tables;
        {
            Resetting list(
                db.statement("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name"));
            while (list->step())
                tables.emplace_back(list->text(0));
        }
        if (tables.empty()) return false;
        if (std::find(tables.begin(), tables.end(), "factstr_meta") == tables.end()) {
            std::string names;
            for (std::size_t i = 0; i < tables.size() && i < 5; ++i)
                names += (i ? ", " : "") + tables[i];
            throw StoreError(ErrorCode::schema_mismatch,
                             "sqlite:" + options_.path +
                                 " is a SQLite database but not a factstr store (it has tables " +
                                 names + "); it was left untouched");
        }
        std::string format, version;
        {
            Resetting meta(db.statement("SELECT key, value FROM factstr_meta"));
            while (meta->step()) {
                if (meta->text(0) == "format") format = meta->text(1);
                if (meta->text(0) == "schema_version") version = meta->text(1);
            }
        }
        if (format != "factstr")
            throw StoreError(ErrorCode::schema_mismatch, "sqlite:" + options_.path +
                                                             " is not a factstr store (format '" +
                                                             format + "'); it was left untouched");
        if (version != std::to_string(kSchemaVersion))
            throw StoreError(ErrorCode::schema_mismatch,
                             "sqlite:" + options_.path + " has factstr schema version " + version +
                                 ", this build reads version " + std::to_string(kSchemaVersion) +
                                 "; it was left untouched");
        return true;
    }

    // ---- reading -------------------------------------------------------------------------

    // A read transaction: every statement inside sees one snapshot.
    class ReadTransaction {
      public:
        explicit ReadTransaction(Connection& db) : db_(db) { db_.statement(kBegin).run(); }
        ~ReadTransaction() {
            try {
                db_.statement(kCommit).run();
            } catch (...) {
                sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
            }
        }

      private:
        Connection& db_;
    };

    template <class Fn>
    std::invoke_result_t<Fn&, Connection&> with_reader(Fn&& fn) {
        std::unique_ptr<Connection> db;
        {
            std::lock_guard lock(pool_mutex_);
            if (!idle_readers_.empty()) {
                db = std::move(idle_readers_.back());
                idle_readers_.pop_back();
            }
        }
        if (!db) db = open_connection(SQLITE_OPEN_READWRITE);
        struct Return {
            SqliteBackend& self;
            std::unique_ptr<Connection>& db;
            ~Return() {
                std::lock_guard lock(self.pool_mutex_);
                self.idle_readers_.push_back(std::move(db));
            }
        } give_back{*this, db};
        return fn(*db);
    }

    SequenceNumber head_on(Connection& db) {
        Resetting head(db.statement(kHead));
        head->step();
        return head->is_null(0) ? 0 : static_cast<SequenceNumber>(head->integer(0));
    }

    SequenceNumber batch_last_at(Connection& db, SequenceNumber position) {
        Resetting at(db.statement(kBatchLastAt));
        at->bind(1, static_cast<std::int64_t>(position));
        if (!at->step()) return position;
        return static_cast<SequenceNumber>(at->integer(0));
    }

    static Row read_row(Statement& s) {
        return Row{static_cast<SequenceNumber>(s.integer(0)), s.integer(1), s.integer(2),
                   std::string(s.text(3)), static_cast<SequenceNumber>(s.integer(4))};
    }

    std::optional<std::int64_t> type_id(Connection& db, const std::string& name) {
        {
            std::lock_guard lock(types_mutex_);
            auto it = type_ids_.find(name);
            if (it != type_ids_.end()) return it->second;
        }
        Resetting find(db.statement(kTypeByName));
        find->bind(1, name);
        if (!find->step()) return std::nullopt;
        const std::int64_t id = find->integer(0);
        remember_type(id, name);
        return id;
    }

    const std::string& type_name(Connection& db, std::int64_t id) {
        // Rows come in runs of one type: a per-thread one-entry cache spares the shared map's
        // lock. It is keyed by this store's instance number and the type cache's generation.
        struct LastType {
            std::uint64_t instance = 0, generation = 0;
            std::int64_t id = 0;
            const std::string* name = nullptr;
        };
        thread_local LastType last;
        const std::uint64_t generation = types_generation_.load(std::memory_order_acquire);
        if (last.name && last.instance == instance_ && last.generation == generation &&
            last.id == id)
            return *last.name;
        const std::string& name = type_name_uncached(db, id);
        last = LastType{instance_, generation, id, &name};
        return name;
    }

    const std::string& type_name_uncached(Connection& db, std::int64_t id) {
        {
            std::lock_guard lock(types_mutex_);
            auto it = type_names_.find(id);
            if (it != type_names_.end()) return it->second;
        }
        Resetting find(db.statement(kTypeById));
        find->bind(1, id);
        if (!find->step())
            throw StoreError(
                ErrorCode::corrupt_database,
                describe() + ": a fact refers to unknown event type id " + std::to_string(id));
        std::string name(find->text(0));
        return remember_type(id, name);
    }

    const std::string& remember_type(std::int64_t id, const std::string& name) {
        std::lock_guard lock(types_mutex_);
        type_ids_.emplace(name, id);
        // unordered_map keeps references stable across inserts.
        return type_names_.emplace(id, name).first->second;
    }

    EventRecord to_record(Connection& db, Row&& row) {
        return EventRecord{row.sequence_number,
                           Timestamp(std::chrono::microseconds(row.occurred_at)),
                           type_name(db, row.type_id), std::move(row.payload)};
    }

    bool verify(Connection& db, const CompiledQuery& query, const Row& row) {
        return query.matches(type_name(db, row.type_id), row.payload);
    }

    // One leaf per alternative of the query: for a filter with indexable predicates, the
    // rarest key of each predicate; otherwise its event types; otherwise a scan. Every
    // candidate is verified by the shared matcher.
    Plan make_plan(Connection& db, const CompiledQuery& query) {
        Plan plan;
        if (query.matches_all()) {
            plan.leaves.push_back(Leaf{Leaf::Kind::scan});
            return plan;
        }
        for (const CompiledFilter& filter : query.filters()) {
            if (filter.matches_nothing()) continue;
            bool indexable_predicates = filter.predicates.has_value();
            if (filter.predicates)
                for (const auto& p : *filter.predicates)
                    if (p.index_keys.empty()) indexable_predicates = false;
            if (indexable_predicates) {
                for (const auto& p : *filter.predicates)
                    plan.leaves.push_back(Leaf{Leaf::Kind::key, rarest_key(db, p.index_keys)});
            } else if (filter.event_types) {
                for (const std::string& name : *filter.event_types)
                    if (auto id = type_id(db, name))
                        plan.leaves.push_back(Leaf{Leaf::Kind::type, *id});
            } else {
                return Plan{{Leaf{Leaf::Kind::scan}}};
            }
        }
        std::sort(plan.leaves.begin(), plan.leaves.end(), [](const Leaf& a, const Leaf& b) {
            return std::pair(a.kind, a.value) < std::pair(b.kind, b.value);
        });
        plan.leaves.erase(std::unique(plan.leaves.begin(), plan.leaves.end(),
                                      [](const Leaf& a, const Leaf& b) {
                                          return a.kind == b.kind && a.value == b.value;
                                      }),
                          plan.leaves.end());
        return plan;
    }

    std::int64_t rarest_key(Connection& db, const std::vector<std::uint64_t>& keys) {
        if (keys.size() == 1) return static_cast<std::int64_t>(keys[0]);
        std::int64_t best = static_cast<std::int64_t>(keys[0]);
        std::int64_t best_count = -1;
        for (std::uint64_t key : keys) {
            Resetting probe(db.statement(kKeyProbe));
            probe->bind(1, static_cast<std::int64_t>(key));
            probe->step();
            const std::int64_t count = probe->integer(0);
            if (best_count < 0 || count < best_count) {
                best = static_cast<std::int64_t>(key);
                best_count = count;
            }
        }
        return best;
    }

    Statement& leaf_statement(Connection& db, const Leaf& leaf, bool descending) {
        switch (leaf.kind) {
            case Leaf::Kind::scan:
                return db.statement(descending ? kScanDesc : kScanAsc);
            case Leaf::Kind::type:
                return db.statement(descending ? kTypeDesc : kTypeAsc);
            case Leaf::Kind::key:
                return db.statement(descending ? kKeyDesc : kKeyAsc);
        }
        return db.statement(kScanAsc);
    }

    // Matching facts with after < sequence_number <= end, ascending. `indexed_through` is
    // the snapshot's keys_indexed_through.
    // With `limit`, a reader may stop early once it has `limit` rows and a batch is complete;
    // `*stopped_at` then says how far it read (everything after it is left for the next call).
    std::vector<Row> collect(Connection& db, const Plan& plan, const CompiledQuery& query,
                             SequenceNumber after, SequenceNumber end,
                             SequenceNumber indexed_through, std::size_t limit = SIZE_MAX,
                             SequenceNumber* stopped_at = nullptr) {
        std::vector<Row> rows;
        auto run = [&](const Leaf& leaf, SequenceNumber low, SequenceNumber high) {
            if (low >= high) return;
            Resetting leaf_rows(leaf_statement(db, leaf, false));
            leaf_rows->bind(1, static_cast<std::int64_t>(low))
                .bind(2, static_cast<std::int64_t>(high));
            if (leaf.kind != Leaf::Kind::scan) leaf_rows->bind(3, leaf.value);
            while (leaf_rows->step()) {
                Row row = read_row(*leaf_rows);
                if (verify(db, query, row)) rows.push_back(std::move(row));
            }
        };
        const Leaf scan{Leaf::Kind::scan};
        // Several event types that together make up much of the range (a projector reading
        // every type it folds): one pass over the facts in order, skipping other types by id,
        // costs less than one index walk per type, a lookup per fact and a sort.
        if (plan.leaves.size() > 1 && end > after &&
            std::all_of(plan.leaves.begin(), plan.leaves.end(),
                        [](const Leaf& leaf) { return leaf.kind == Leaf::Kind::type; })) {
            std::uint64_t candidates = 0;
            for (const Leaf& leaf : plan.leaves) {
                Resetting count(db.statement(kTypeCount));
                count->bind(1, static_cast<std::int64_t>(after))
                    .bind(2, static_cast<std::int64_t>(end))
                    .bind(3, leaf.value);
                if (count->step()) candidates += static_cast<std::uint64_t>(count->integer(0));
            }
            if (candidates * 2 >= end - after) {
                Resetting scan_rows(db.statement(kScanAsc));
                scan_rows->bind(1, static_cast<std::int64_t>(after))
                    .bind(2, static_cast<std::int64_t>(end));
                while (scan_rows->step()) {
                    if (rows.size() >= limit && stopped_at &&
                        static_cast<SequenceNumber>(scan_rows->integer(0)) >
                            rows.back().batch_last) {
                        *stopped_at = rows.back().batch_last;  // a whole batch, then stop
                        break;
                    }
                    const std::int64_t type = scan_rows->integer(2);
                    if (std::none_of(plan.leaves.begin(), plan.leaves.end(),
                                     [&](const Leaf& leaf) { return leaf.value == type; }))
                        continue;
                    Row row = read_row(*scan_rows);
                    if (verify(db, query, row)) rows.push_back(std::move(row));
                }
                return rows;
            }
        }
        for (const Leaf& leaf : plan.leaves) {
            if (leaf.kind != Leaf::Kind::key) {
                run(leaf, after, end);
                continue;
            }
            run(leaf, after, std::min(end, indexed_through));
            auto recent =
                recent_candidates(static_cast<std::uint64_t>(leaf.value), indexed_through, end);
            for (SequenceNumber seq : recent.sequence_numbers) {
                if (seq <= after) continue;
                if (auto row = fact_at(db, seq); row && verify(db, query, *row))
                    rows.push_back(std::move(*row));
            }
            for (auto [low, high] : recent.scan_ranges)
                run(scan, std::max(low, after), high);
        }
        if (plan.leaves.size() > 1 || rows.size() > 1) {
            std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
                return a.sequence_number < b.sequence_number;
            });
            rows.erase(std::unique(rows.begin(), rows.end(),
                                   [](const Row& a, const Row& b) {
                                       return a.sequence_number == b.sequence_number;
                                   }),
                       rows.end());
        }
        return rows;
    }

    std::optional<Row> fact_at(Connection& db, SequenceNumber seq) {
        Resetting at(db.statement(kFactAt));
        at->bind(1, static_cast<std::int64_t>(seq));
        if (!at->step()) return std::nullopt;
        return read_row(*at);
    }

    // The highest matching sequence number at or below `end`.
    std::optional<SequenceNumber> highest_match(Connection& db, const Plan& plan,
                                                const CompiledQuery& query, SequenceNumber end,
                                                SequenceNumber indexed_through) {
        SequenceNumber best = 0;
        // The first verified row of a descending leaf over (low, high], if above best.
        auto run = [&](const Leaf& leaf, SequenceNumber low, SequenceNumber high) {
            low = std::max(low, best);
            if (low >= high) return;
            Resetting leaf_rows(leaf_statement(db, leaf, true));
            leaf_rows->bind(1, static_cast<std::int64_t>(low))
                .bind(2, static_cast<std::int64_t>(high));
            if (leaf.kind != Leaf::Kind::scan) leaf_rows->bind(3, leaf.value);
            while (leaf_rows->step()) {
                Row row = read_row(*leaf_rows);
                if (verify(db, query, row)) {
                    best = row.sequence_number;
                    return;
                }
            }
        };
        const Leaf scan{Leaf::Kind::scan};
        for (const Leaf& leaf : plan.leaves) {
            if (leaf.kind != Leaf::Kind::key) {
                run(leaf, 0, end);
                continue;
            }
            auto recent =
                recent_candidates(static_cast<std::uint64_t>(leaf.value), indexed_through, end);
            for (auto it = recent.scan_ranges.rbegin(); it != recent.scan_ranges.rend(); ++it)
                run(scan, it->first, it->second);
            for (auto it = recent.sequence_numbers.rbegin(); it != recent.sequence_numbers.rend();
                 ++it) {
                if (*it <= best) break;
                if (auto row = fact_at(db, *it); row && verify(db, query, *row)) {
                    best = *it;
                    break;
                }
            }
            run(leaf, 0, std::min(end, indexed_through));
        }
        if (best == 0) return std::nullopt;
        return best;
    }

    // ---- writing -------------------------------------------------------------------------

    AppendIfResult submit(std::vector<PreparedEvent>& events, const CompiledQuery* context,
                          std::optional<SequenceNumber> expected) {
        return group_commit_.submit(
            events, context, expected,
            [this](std::vector<WriteRequest*>& group) { return commit_group(group); },
            [this](SequenceNumber head) { notify_committed(head); });
    }

    // Returns the new head when anything was committed, else 0.
    SequenceNumber commit_group(std::vector<WriteRequest*>& group) {
        std::lock_guard lock(write_mutex_);
        Connection& db = *writer_;
        std::vector<std::string> new_types;
        bool wrote = false;
        SequenceNumber head = 0;
        SequenceNumber committed_before = 0;
        try {
            db.statement(kBeginImmediate).run();
            head = head_on(db);
            // Everything visible now is committed: bring the key tail up to it, so that
            // context checks below only scan what this group itself inserts.
            const SequenceNumber indexed = indexed_through_on(db);
            refresh_tail(db, indexed, head);
            committed_before = head;
            const std::int64_t now = now_micros();
            for (WriteRequest* request : group) {
                if (request->context) {
                    Plan plan = make_plan(db, *request->context);
                    auto actual = highest_match(db, plan, *request->context, head, indexed);
                    if (actual != request->expected) {
                        request->result = ConditionalAppendConflict{request->expected, actual};
                        continue;
                    }
                }
                const SequenceNumber first = head + 1;
                const SequenceNumber last = head + request->events->size();
                for (PreparedEvent& event : *request->events) {
                    ++head;
                    const std::int64_t type = intern_type(db, event.event_type, new_types);
                    Resetting insert(db.statement(kInsertFact));
                    insert->bind(1, static_cast<std::int64_t>(head))
                        .bind(2, event.occurred_at ? event.occurred_at->time_since_epoch().count()
                                                   : now)
                        .bind(3, type)
                        .bind(4, event.payload.compact)
                        .bind(5, static_cast<std::int64_t>(last));
                    insert->run();
                }
                request->result = AppendResult{first, last, request->events->size()};
                wrote = true;
            }
            db.statement(kCommit).run();
        } catch (...) {
            sqlite3_exec(db.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
            forget_types(new_types);
            for (WriteRequest* request : group) {
                request->result.reset();
                request->error = std::current_exception();
            }
            return 0;
        }
        if (!wrote) return 0;
        add_group_to_tail(group, committed_before, head);
        try {
            fold_tail_if_due(db);
        } catch (const std::exception&) {
            // The appends are committed; folding is retried after the next commit.
        }
        return head;
    }

    // ---- the payload key index -------------------------------------------------------------

    SequenceNumber indexed_through_on(Connection& db) {
        Resetting at(db.statement(kIndexedThrough));
        if (!at->step())
            throw StoreError(ErrorCode::corrupt_database, describe() + ": index_state is empty");
        return static_cast<SequenceNumber>(at->integer(0));
    }

    // Brings the tail map to cover (indexed_through, end] from `db`'s snapshot. Call only with
    // committed data in view.
    void refresh_tail(Connection& db, SequenceNumber indexed_through, SequenceNumber end) {
        std::lock_guard lock(tail_mutex_);
        if (indexed_through > tail_.base) {
            tail_.keys.clear();
            tail_.base = tail_.seen = indexed_through;
        }
        if (tail_.base > indexed_through || tail_.seen >= end) return;
        Resetting rows(db.statement(kPayloadsAsc));
        rows->bind(1, static_cast<std::int64_t>(tail_.seen))
            .bind(2, static_cast<std::int64_t>(end));
        while (rows->step()) {
            const auto seq = static_cast<SequenceNumber>(rows->integer(0));
            for (std::uint64_t key : json::index_keys_of(rows->text(1)))
                tail_.keys[key].push_back(seq);
        }
        tail_.seen = end;
    }

    // A committed group extends the tail directly, without reading it back.
    void add_group_to_tail(const std::vector<WriteRequest*>& group, SequenceNumber committed_before,
                           SequenceNumber head) {
        std::lock_guard lock(tail_mutex_);
        if (tail_.seen != committed_before) return;  // the next refresh reads it instead
        for (const WriteRequest* request : group) {
            if (!request->result || !request->result->committed()) continue;
            SequenceNumber seq = request->result->append_result()->first_sequence_number;
            for (const PreparedEvent& event : *request->events) {
                for (std::uint64_t key : event.payload.index_keys)
                    tail_.keys[key].push_back(seq);
                ++seq;
            }
        }
        tail_.seen = head;
    }

    // Folds the tail into payload_keys in one transaction, sorted by key, once it is long
    // enough. Any process may do it; the transaction makes it happen once.
    void fold_tail_if_due(Connection& db) {
        {
            std::lock_guard lock(tail_mutex_);
            if (tail_.seen - tail_.base < kIndexBatch) return;
        }
        db.statement(kBeginImmediate).run();
        try {
            const SequenceNumber from = indexed_through_on(db);
            const SequenceNumber to = head_on(db);
            if (to - from >= kIndexBatch) {
                std::vector<std::pair<std::uint64_t, SequenceNumber>> entries;
                {
                    Resetting rows(db.statement(kPayloadsAsc));
                    rows->bind(1, static_cast<std::int64_t>(from))
                        .bind(2, static_cast<std::int64_t>(to));
                    while (rows->step()) {
                        const auto seq = static_cast<SequenceNumber>(rows->integer(0));
                        for (std::uint64_t key : json::index_keys_of(rows->text(1)))
                            entries.emplace_back(key, seq);
                    }
                }
                // Sorted as the index is (by signed key, as SQLite compares integers).
                std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
                    return std::pair(static_cast<std::int64_t>(a.first), a.second) <
                           std::pair(static_cast<std::int64_t>(b.first), b.second);
                });
                for (const auto& [key, seq] : entries) {
                    Resetting index(db.statement(kInsertKey));
                    index->bind(1, static_cast<std::int64_t>(key))
                        .bind(2, static_cast<std::int64_t>(seq));
                    index->run();
                }
                Resetting set(db.statement(kSetIndexedThrough));
                set->bind(1, static_cast<std::int64_t>(to));
                set->run();
            }
            db.statement(kCommit).run();
        } catch (...) {
            sqlite3_exec(db.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
            throw;
        }
    }

    // Facts after indexed_through that may carry `key`, as seen from a snapshot ending at
    // `end`: the tail map's entries, plus ranges the map does not cover (another snapshot's
    // fold, or this write transaction's own inserts) whose every fact is a candidate.
    struct RecentCandidates {
        std::vector<SequenceNumber> sequence_numbers;                        // ascending
        std::vector<std::pair<SequenceNumber, SequenceNumber>> scan_ranges;  // (low, high]
    };

    RecentCandidates recent_candidates(std::uint64_t key, SequenceNumber indexed_through,
                                       SequenceNumber end) {
        RecentCandidates out;
        std::lock_guard lock(tail_mutex_);
        const SequenceNumber low = std::max(indexed_through, tail_.base);
        const SequenceNumber high = std::min(tail_.seen, end);
        if (indexed_through < tail_.base)
            out.scan_ranges.emplace_back(indexed_through, std::min(tail_.base, end));
        if (auto it = tail_.keys.find(key); it != tail_.keys.end())
            for (SequenceNumber seq : it->second)
                if (seq > low && seq <= high) out.sequence_numbers.push_back(seq);
        if (std::max(tail_.seen, indexed_through) < end)
            out.scan_ranges.emplace_back(std::max(tail_.seen, indexed_through), end);
        return out;
    }

    std::int64_t intern_type(Connection& db, const std::string& name,
                             std::vector<std::string>& new_types) {
        if (auto id = type_id(db, name)) return *id;
        Resetting insert(db.statement(kInsertType));
        insert->bind(1, name);
        insert->run();
        const std::int64_t id = sqlite3_last_insert_rowid(db.handle());
        remember_type(id, name);
        new_types.push_back(name);
        return id;
    }

    // A rolled-back transaction's new types do not exist: drop them from the cache.
    void forget_types(const std::vector<std::string>& names) {
        std::lock_guard lock(types_mutex_);
        if (!names.empty()) types_generation_.fetch_add(1, std::memory_order_acq_rel);
        for (const std::string& name : names) {
            auto it = type_ids_.find(name);
            if (it == type_ids_.end()) continue;
            type_names_.erase(it->second);
            type_ids_.erase(it);
        }
    }

    SqliteOptions options_;

    std::mutex write_mutex_;
    std::unique_ptr<Connection> writer_;

    GroupCommit group_commit_;

    std::mutex pool_mutex_;
    std::vector<std::unique_ptr<Connection>> idle_readers_;

    std::mutex poll_mutex_;
    std::unique_ptr<Connection> poller_;
    std::int64_t last_data_version_ = -1;

    struct KeyTail {
        SequenceNumber base = 0;  // keys_indexed_through when the map was started
        SequenceNumber seen = 0;  // the map covers (base, seen]
        std::unordered_map<std::uint64_t, std::vector<SequenceNumber>> keys;
    };
    std::mutex tail_mutex_;
    KeyTail tail_;

    static std::uint64_t next_instance() {
        static std::atomic<std::uint64_t> counter{0};
        return ++counter;
    }
    const std::uint64_t instance_ = next_instance();
    std::atomic<std::uint64_t> types_generation_{0};
    std::mutex types_mutex_;
    std::unordered_map<std::string, std::int64_t> type_ids_;
    std::unordered_map<std::int64_t, std::string> type_names_;
};

}  // namespace
}  // namespace sqlite

std::unique_ptr<Backend> make_sqlite_backend(SqliteOptions options) {
    if (options.path.empty())
        throw InvalidInput(ErrorCode::invalid_argument,
                           "sqlite: needs a file path, e.g. sqlite:./facts.db");
    return std::make_unique<sqlite::SqliteBackend>(std::move(options));
}

}  // namespace factstr
