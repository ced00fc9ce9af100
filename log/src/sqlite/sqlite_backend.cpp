// The SQLite backend: the embedded, persistent default.
//
// Schema (version 3): facts(sequence_number INTEGER PRIMARY KEY, …, batch_last) keeps every
// fact with the last sequence number of the append it came in (the batch boundary);
// event_types interns type names; payload_postings indexes every top-level scalar of every
// payload and every fact's event type (json::type_index_key, a key no payload member has);
// durable_streams keeps cursors.
//
// The key index is written in bulk, not per append: a random secondary-index insert per key
// would dirty a page per key and multiply what every commit writes. (Version 2 kept the event
// type in a B-tree index on facts, written on every append: 20-25 % of a batch append's
// time.) The index covers
// the facts up to key_index_state.keys_indexed_through; each process keeps the facts after that
// (the tail, index_batch facts at most) in an in-memory key map built from the log, and a
// writer folds the tail into the index once it holds index_batch facts. A lookup is the
// union of both, so it still costs about the number of matching facts.
//
// The index is a posting list per key: payload_postings(key_hash, last_sequence, entries,
// sequences) rows hold a key's ascending sequence numbers as LEB128 deltas, at most
// kPostingBytes per row (so a row stays on its B-tree page). A fold extends each key's newest
// row and starts a new one when it is full: one row written per key per fold, where version 1
// (payload_keys, one row per key per fact) wrote ~4 per fact. Version 1 and 2 files are
// converted when they are first opened.
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

#include "factstr/internal/group_commit.hpp"
#include "factstr/internal/backend.hpp"
#include "factstr/errors.hpp"
#include "factstr/database/sqlite_connection.hpp"

namespace factstr {
namespace sqlite {
namespace {

constexpr int kSchemaVersion = 3;

// The posting list table: in the schema, and added by the version 1 conversion.
#define POSTINGS_TABLE                                                                          \
    "CREATE TABLE payload_postings (key_hash INTEGER NOT NULL, last_sequence INTEGER NOT NULL," \
    " entries INTEGER NOT NULL, sequences BLOB NOT NULL,"                                       \
    " PRIMARY KEY (key_hash, last_sequence)) WITHOUT ROWID;"

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
)sql" POSTINGS_TABLE R"sql(
CREATE TABLE key_index_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  keys_indexed_through INTEGER NOT NULL
);
INSERT INTO key_index_state (id, keys_indexed_through) VALUES (1, 0);
CREATE TABLE durable_streams (
  name TEXT PRIMARY KEY,
  position INTEGER NOT NULL,
  query_json TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO factstr_meta (key, value) VALUES ('format', 'factstr'), ('schema_version', '3');
)sql";

// Version 1 -> 2: payload_keys (one row per key per fact) becomes payload_postings.
constexpr const char* kPostingsTable = POSTINGS_TABLE;
#undef POSTINGS_TABLE
constexpr const char* kVersion1Keys =
    "SELECT key_hash, sequence_number FROM payload_keys ORDER BY key_hash, sequence_number";
constexpr const char* kFinishVersion2 =
    "DROP TABLE payload_keys; UPDATE factstr_meta SET value = '2' WHERE key = 'schema_version'";
// Version 2 -> 3: the facts_by_type index becomes posting lists of the types' keys (for the
// facts the key index covers; the others are in every process's tail). index_state is
// renamed: a process of an older build that has the file open fails at its next read or
// write, instead of folding facts into the key index without their types.
constexpr const char* kVersion2Types =
    "SELECT type_id, sequence_number FROM facts WHERE sequence_number <= ?1"
    " ORDER BY type_id, sequence_number";
constexpr const char* kVersion2IndexedThrough = "SELECT keys_indexed_through FROM index_state";
constexpr const char* kFinishVersion3 =
    "DROP INDEX IF EXISTS facts_by_type; ALTER TABLE index_state RENAME TO key_index_state;"
    " UPDATE factstr_meta SET value = '3' WHERE key = 'schema_version'";

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
// A key's posting rows that may hold sequence numbers in (?2, ?3]: ascending, a reader stops
// at the first number above ?3; descending, they start at the row that covers ?3.
constexpr const char* kPostingsAsc =
    "SELECT sequences FROM payload_postings WHERE key_hash = ?1 AND last_sequence > ?2"
    " ORDER BY last_sequence";
constexpr const char* kPostingsDesc =
    "SELECT sequences FROM payload_postings WHERE key_hash = ?1 AND last_sequence > ?2"
    " AND last_sequence <= coalesce((SELECT min(last_sequence) FROM payload_postings"
    " WHERE key_hash = ?1 AND last_sequence >= ?3), ?3)"
    " ORDER BY last_sequence DESC";
// How common a key is, roughly (its newest rows' entries; enough to pick the rarest key).
constexpr const char* kPostingProbe =
    "SELECT coalesce(sum(entries), 0) FROM (SELECT entries FROM payload_postings"
    " WHERE key_hash = ?1 ORDER BY last_sequence DESC LIMIT 8)";
// How many of a key's indexed facts lie in (?2, ?3], roughly (the rows ending there).
constexpr const char* kPostingCount =
    "SELECT coalesce(sum(entries), 0) FROM payload_postings"
    " WHERE key_hash = ?1 AND last_sequence > ?2 AND last_sequence <= ?3";
constexpr const char* kNewestPosting =
    "SELECT last_sequence, entries, sequences FROM payload_postings WHERE key_hash = ?1"
    " ORDER BY last_sequence DESC LIMIT 1";
constexpr const char* kExtendPosting =
    "UPDATE payload_postings SET last_sequence = ?3, entries = ?4, sequences = ?5"
    " WHERE key_hash = ?1 AND last_sequence = ?2";
constexpr const char* kInsertPosting =
    "INSERT INTO payload_postings (key_hash, last_sequence, entries, sequences)"
    " VALUES (?1, ?2, ?3, ?4)";
constexpr const char* kBatchLastAt = "SELECT batch_last FROM facts WHERE sequence_number = ?1";
constexpr const char* kInsertFact =
    "INSERT INTO facts (" FACT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5)";
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
constexpr const char* kIndexedThrough = "SELECT keys_indexed_through FROM key_index_state";
constexpr const char* kSetIndexedThrough = "UPDATE key_index_state SET keys_indexed_through = ?1";
constexpr const char* kFactAt = "SELECT " FACT_COLUMNS " FROM facts WHERE sequence_number = ?1";
constexpr const char* kPayloadsAsc =
    "SELECT sequence_number, type_id, payload FROM facts"
    " WHERE sequence_number > ?1 AND sequence_number <= ?2 ORDER BY sequence_number";

#undef FACT_COLUMNS

// The largest encoded posting row: with its key columns it stays under SQLite's largest
// local payload of an index B-tree cell on a 4 KiB page (1002 bytes), so no overflow pages.
constexpr std::size_t kPostingBytes = 960;

std::size_t varint_size(std::uint64_t value) {
    std::size_t size = 1;
    while (value >= 0x80) {
        value >>= 7;
        ++size;
    }
    return size;
}

void append_varint(std::string& out, std::uint64_t value) {
    while (value >= 0x80) {
        out += static_cast<char>((value & 0x7f) | 0x80);
        value >>= 7;
    }
    out += static_cast<char>(value);
}

// Decodes a posting row: its ascending sequence numbers, appended to `out`.
bool decode_postings(std::string_view bytes, std::vector<SequenceNumber>& out) {
    SequenceNumber previous = 0;
    std::uint64_t value = 0;
    int shift = 0;
    for (char c : bytes) {
        const auto byte = static_cast<unsigned char>(c);
        if (shift > 63) return false;
        value |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
        if (byte & 0x80) {
            shift += 7;
            continue;
        }
        previous += value;
        out.push_back(previous);
        value = 0;
        shift = 0;
    }
    return shift == 0;
}

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

// Where a query's candidates come from: every fact, or the postings of one key — a payload
// key, or an event type's key (then `type_id` is the type's id, else 0).
struct Leaf {
    enum class Kind { scan, key } kind;
    std::int64_t value = 0;
    std::int64_t type_id = 0;
};

struct Plan {
    std::vector<Leaf> leaves;  // empty: nothing can match
};

// Key hash (payload member or event type) -> the sequence numbers of the facts carrying it,
// ascending.
using KeyMap = std::unordered_map<std::uint64_t, std::vector<SequenceNumber>>;

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

    // Creates the schema in an empty file and converts a version 1 or 2 file, each in one write
    // transaction (another process may be doing the same: the second finds it done).
    void ensure_schema(Connection& db) {
        if (validate_existing(db) == kSchemaVersion) return;
        db.exec("BEGIN IMMEDIATE");
        try {
            const int version = validate_existing(db);
            if (version == 0) db.exec(kSchema);
            if (version == 1) convert_version_1(db);
            if (version == 1 || version == 2) convert_version_2(db);
            db.exec("COMMIT");
        } catch (...) {
            sqlite3_exec(db.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
            throw;
        }
    }

    // payload_keys' rows, read in key order, become posting rows; the rest of the file is
    // unchanged.
    void convert_version_1(Connection& db) {
        db.exec(kPostingsTable);
        Resetting keys(db.statement(kVersion1Keys));
        add_grouped_postings(db, *keys, [](std::int64_t key) { return key; });
        db.exec(kFinishVersion2);
    }

    // The type index's entries up to keys_indexed_through, read in type order, become posting
    // rows of the types' keys; the index is dropped.
    void convert_version_2(Connection& db) {
        SequenceNumber indexed = 0;
        {
            Resetting at(db.statement(kVersion2IndexedThrough));
            if (at->step()) indexed = static_cast<SequenceNumber>(at->integer(0));
        }
        Resetting rows(db.statement(kVersion2Types));
        rows->bind(1, static_cast<std::int64_t>(indexed));
        add_grouped_postings(db, *rows, [&](std::int64_t type) { return type_key(db, type); });
        db.exec(kFinishVersion3);
    }

    // A conversion's rows (group, sequence_number), ordered by both, become posting rows of
    // each group's key (`key_of(group)`). The statement is reset when done.
    template <class KeyOf>
    void add_grouped_postings(Connection& db, Statement& rows, KeyOf&& key_of) {
        std::int64_t group = 0;
        std::vector<SequenceNumber> sequences;
        auto flush = [&] {
            if (!sequences.empty()) add_postings(db, key_of(group), sequences);
            sequences.clear();
        };
        while (rows.step()) {
            if (rows.integer(0) != group) flush();
            group = rows.integer(0);
            sequences.push_back(static_cast<SequenceNumber>(rows.integer(1)));
        }
        flush();
        rows.reset();
    }

    // The file's factstr schema version (1, 2 or ours); 0 when the file is empty. Throws for
    // anything else, without changing the file.
    int validate_existing(Connection& db) {
        std::vector<std::string> tables;
        {
            Resetting list(
                db.statement("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name"));
            while (list->step())
                tables.emplace_back(list->text(0));
        }
        if (tables.empty()) return 0;
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
        if (version == "1") return 1;
        if (version == "2") return 2;
        if (version != std::to_string(kSchemaVersion))
            throw StoreError(ErrorCode::schema_mismatch,
                             "sqlite:" + options_.path + " has factstr schema version " + version +
                                 ", this build reads versions 1 to " +
                                 std::to_string(kSchemaVersion) + "; it was left untouched");
        return kSchemaVersion;
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

    // An event type's key in payload_postings and the tail.
    std::int64_t type_key(Connection& db, std::int64_t id) {
        return static_cast<std::int64_t>(json::type_index_key(type_name(db, id)));
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
    // rarest key of each predicate; otherwise the keys of its event types; otherwise a scan.
    // Every candidate is verified by the shared matcher.
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
                        plan.leaves.push_back(
                            Leaf{Leaf::Kind::key,
                                 static_cast<std::int64_t>(json::type_index_key(name)), *id});
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
            Resetting probe(db.statement(kPostingProbe));
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

    // Calls fn(sequence_number) for the facts in (low, high] that the key index
    // lists under `key`, ascending or descending, until fn returns false.
    template <class Fn>
    void for_each_indexed(Connection& db, std::int64_t key, SequenceNumber low, SequenceNumber high,
                          bool descending, Fn&& fn) {
        if (low >= high) return;
        std::vector<SequenceNumber> sequences;
        Resetting rows(db.statement(descending ? kPostingsDesc : kPostingsAsc));
        rows->bind(1, key).bind(2, static_cast<std::int64_t>(low));
        if (descending) rows->bind(3, static_cast<std::int64_t>(high));
        while (rows->step()) {
            sequences.clear();
            if (!decode_postings(rows->blob(0), sequences))
                throw StoreError(ErrorCode::corrupt_database,
                                 describe() + ": a payload_postings row of key " +
                                     std::to_string(key) + " does not decode");
            if (descending) {
                for (auto it = sequences.rbegin(); it != sequences.rend(); ++it) {
                    if (*it > high) continue;
                    if (*it <= low || !fn(*it)) return;
                }
            } else {
                for (SequenceNumber seq : sequences) {
                    if (seq <= low) continue;
                    if (seq > high || !fn(seq)) return;
                }
            }
        }
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
        auto keep_verified = [&](Row&& row) {
            if (verify(db, query, row)) rows.push_back(std::move(row));
        };
        // Every fact in (low, high], verified.
        auto scan = [&](SequenceNumber low, SequenceNumber high) {
            if (low >= high) return;
            Resetting scan_rows(db.statement(kScanAsc));
            scan_rows->bind(1, static_cast<std::int64_t>(low))
                .bind(2, static_cast<std::int64_t>(high));
            while (scan_rows->step())
                keep_verified(read_row(*scan_rows));
        };
        // Event types that together make up much of the range (a projector reading every
        // type it folds, a broad query by type): one pass over the facts in order, skipping
        // other types by id, costs less than a lookup per fact.
        if (!plan.leaves.empty() && end > after &&
            std::all_of(plan.leaves.begin(), plan.leaves.end(),
                        [](const Leaf& leaf) { return leaf.type_id != 0; })) {
            std::uint64_t candidates = 0;
            for (const Leaf& leaf : plan.leaves)
                candidates += candidate_count(db, leaf.value, after, end, indexed_through);
            if (candidates * 4 >= end - after) {
                Resetting scan_rows(db.statement(kScanAsc));
                scan_rows->bind(1, static_cast<std::int64_t>(after))
                    .bind(2, static_cast<std::int64_t>(end));
                while (scan_rows->step()) {
                    if (rows.size() >= limit && !rows.empty() && stopped_at &&
                        static_cast<SequenceNumber>(scan_rows->integer(0)) >
                            rows.back().batch_last) {
                        *stopped_at = rows.back().batch_last;  // a whole batch, then stop
                        break;
                    }
                    const std::int64_t type = scan_rows->integer(2);
                    if (std::none_of(plan.leaves.begin(), plan.leaves.end(),
                                     [&](const Leaf& leaf) { return leaf.type_id == type; }))
                        continue;
                    keep_verified(read_row(*scan_rows));
                }
                return rows;
            }
        }
        std::vector<SequenceNumber> sequences;
        for (const Leaf& leaf : plan.leaves) {
            if (leaf.kind == Leaf::Kind::scan) {
                scan(after, end);
                continue;
            }
            sequences.clear();
            for_each_indexed(db, leaf.value, after, std::min(end, indexed_through), false,
                             [&](SequenceNumber seq) {
                                 sequences.push_back(seq);
                                 return true;
                             });
            auto recent =
                recent_candidates(static_cast<std::uint64_t>(leaf.value), indexed_through, end);
            for (SequenceNumber seq : recent.sequence_numbers)
                if (seq > after) sequences.push_back(seq);
            read_facts(db, sequences, keep_verified);
            for (auto [low, high] : recent.scan_ranges)
                scan(std::max(low, after), high);
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

    // Calls fn(row) for the facts at `sequences` (ascending): a run of consecutive numbers (a
    // batch of one type, say) is read as one range, not a lookup per fact.
    template <class Fn>
    void read_facts(Connection& db, const std::vector<SequenceNumber>& sequences, Fn&& fn) {
        for (std::size_t i = 0; i < sequences.size();) {
            std::size_t j = i + 1;
            while (j < sequences.size() && sequences[j] == sequences[j - 1] + 1)
                ++j;
            if (j - i == 1) {
                if (auto row = fact_at(db, sequences[i])) fn(std::move(*row));
            } else {
                Resetting range(db.statement(kScanAsc));
                range->bind(1, static_cast<std::int64_t>(sequences[i] - 1))
                    .bind(2, static_cast<std::int64_t>(sequences[j - 1]));
                while (range->step())
                    fn(read_row(*range));
            }
            i = j;
        }
    }

    // Roughly how many facts in (low, high] carry `key`: the entries of its posting rows that
    // end in the range, and its candidates after them.
    std::uint64_t candidate_count(Connection& db, std::int64_t key, SequenceNumber low,
                                  SequenceNumber high, SequenceNumber indexed_through) {
        std::uint64_t count = 0;
        const SequenceNumber indexed_high = std::min(high, indexed_through);
        if (low < indexed_high) {
            Resetting rows(db.statement(kPostingCount));
            rows->bind(1, key)
                .bind(2, static_cast<std::int64_t>(low))
                .bind(3, static_cast<std::int64_t>(indexed_high));
            if (rows->step()) count += static_cast<std::uint64_t>(rows->integer(0));
        }
        std::lock_guard lock(tail_mutex_);
        const TailSlice slice =
            tail_slice(static_cast<std::uint64_t>(key), indexed_through, high, low);
        count += static_cast<std::uint64_t>(slice.last - slice.first);
        for (auto [from, to] : slice.uncovered)
            if (to > std::max(from, low)) count += to - std::max(from, low);
        return count;
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
        // The first verified fact of (low, high], descending, if above best.
        auto scan = [&](SequenceNumber low, SequenceNumber high) {
            low = std::max(low, best);
            if (low >= high) return;
            Resetting leaf_rows(db.statement(kScanDesc));
            leaf_rows->bind(1, static_cast<std::int64_t>(low))
                .bind(2, static_cast<std::int64_t>(high));
            while (leaf_rows->step()) {
                Row row = read_row(*leaf_rows);
                if (verify(db, query, row)) {
                    best = row.sequence_number;
                    return;
                }
            }
        };
        for (const Leaf& leaf : plan.leaves) {
            if (leaf.kind == Leaf::Kind::scan) {
                scan(0, end);
                continue;
            }
            // The tail newest first, a chunk at a time: a type's list is long, and its newest
            // entry usually matches.
            constexpr std::size_t kChunk = 64;
            for (SequenceNumber high = end;;) {
                auto recent = recent_candidates(static_cast<std::uint64_t>(leaf.value),
                                                indexed_through, high, best, kChunk);
                for (auto it = recent.scan_ranges.rbegin(); it != recent.scan_ranges.rend(); ++it)
                    scan(it->first, it->second);
                bool found = false;
                for (auto it = recent.sequence_numbers.rbegin();
                     !found && it != recent.sequence_numbers.rend() && *it > best; ++it)
                    if (auto row = fact_at(db, *it); row && verify(db, query, *row)) {
                        best = *it;
                        found = true;
                    }
                if (found || recent.sequence_numbers.size() < kChunk) break;
                high = recent.sequence_numbers.front() - 1;
            }
            for_each_indexed(db, leaf.value, best, std::min(end, indexed_through), true,
                             [&](SequenceNumber seq) {
                                 if (auto row = fact_at(db, seq); row && verify(db, query, *row)) {
                                     best = seq;
                                     return false;
                                 }
                                 return true;
                             });
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
            // Forgotten while the write lock is held: once it is released, another process
            // may give one of these ids to another type.
            forget_types(new_types);
            sqlite3_exec(db.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
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
            throw StoreError(ErrorCode::corrupt_database,
                             describe() + ": key_index_state is empty");
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
        try {
            read_keys(db, tail_.seen, end, tail_.keys);
        } catch (...) {
            // Part of the range may be in the map: start it over from its base.
            tail_.keys.clear();
            tail_.seen = tail_.base;
            throw;
        }
        tail_.seen = end;
    }

    // Adds the keys (event type and payload) of the facts in (after, end], read from the
    // log, to `keys`.
    void read_keys(Connection& db, SequenceNumber after, SequenceNumber end, KeyMap& keys) {
        Resetting rows(db.statement(kPayloadsAsc));
        rows->bind(1, static_cast<std::int64_t>(after)).bind(2, static_cast<std::int64_t>(end));
        std::int64_t last_type = 0;
        std::uint64_t last_type_key = 0;
        while (rows->step()) {
            const auto seq = static_cast<SequenceNumber>(rows->integer(0));
            if (rows->integer(1) != last_type || last_type == 0) {
                last_type = rows->integer(1);
                last_type_key = static_cast<std::uint64_t>(type_key(db, last_type));
            }
            keys[last_type_key].push_back(seq);
            for (std::uint64_t key : json::index_keys_of(rows->text(2)))
                keys[key].push_back(seq);
        }
    }

    // A committed group extends the tail directly, without reading it back.
    void add_group_to_tail(const std::vector<WriteRequest*>& group, SequenceNumber committed_before,
                           SequenceNumber head) {
        std::lock_guard lock(tail_mutex_);
        if (tail_.seen != committed_before) return;  // the next refresh reads it instead
        const std::string* last_type = nullptr;
        std::uint64_t last_type_key = 0;
        for (const WriteRequest* request : group) {
            if (!request->result || !request->result->committed()) continue;
            SequenceNumber seq = request->result->append_result()->first_sequence_number;
            for (const PreparedEvent& event : *request->events) {
                if (!last_type || *last_type != event.event_type) {
                    last_type = &event.event_type;
                    last_type_key = json::type_index_key(event.event_type);
                }
                tail_.keys[last_type_key].push_back(seq);
                for (std::uint64_t key : event.payload.index_keys)
                    tail_.keys[key].push_back(seq);
                ++seq;
            }
        }
        tail_.seen = head;
    }

    // Folds the tail into the payload key index in one transaction once it is long enough.
    // Any process may do it; the transaction makes it happen once.
    void fold_tail_if_due(Connection& db) {
        const auto batch = static_cast<SequenceNumber>(options_.index_batch);
        {
            std::lock_guard lock(tail_mutex_);
            if (tail_.seen - tail_.base < batch) return;
        }
        db.statement(kBeginImmediate).run();
        try {
            const SequenceNumber from = indexed_through_on(db);
            const SequenceNumber to = head_on(db);
            if (to - from >= batch) {
                // This process's tail map, when it covers exactly what is folded; else the
                // facts, read back.
                KeyMap folded;
                bool covered = false;
                {
                    std::lock_guard lock(tail_mutex_);
                    covered = tail_.base == from && tail_.seen == to;
                    if (covered) folded = tail_.keys;
                }
                if (!covered) read_keys(db, from, to, folded);
                std::vector<std::pair<std::int64_t, std::vector<SequenceNumber>>> keys;
                keys.reserve(folded.size());
                for (auto& [key, sequences] : folded)
                    keys.emplace_back(static_cast<std::int64_t>(key), std::move(sequences));
                // In the index's order (SQLite compares the keys as signed integers).
                std::sort(keys.begin(), keys.end(),
                          [](const auto& a, const auto& b) { return a.first < b.first; });
                for (const auto& [key, sequences] : keys)
                    add_postings(db, key, sequences);
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

    // Adds `sequences` (ascending, all above what the index holds for `key`) to the key's
    // posting rows: the newest row is extended while it has room, then new rows follow.
    void add_postings(Connection& db, std::int64_t key,
                      const std::vector<SequenceNumber>& sequences) {
        std::size_t next = 0;
        auto fill = [&](std::string& bytes, SequenceNumber& last, std::int64_t& entries) {
            while (next < sequences.size()) {
                const SequenceNumber delta = sequences[next] - last;
                if (delta == 0) {
                    // Two fields of one fact with the same key hash (say "a":"b\u0000sc" and
                    // "a\u0000sb":"c"): the fact is listed once.
                    ++next;
                    continue;
                }
                if (entries > 0 && bytes.size() + varint_size(delta) > kPostingBytes) break;
                append_varint(bytes, delta);
                last = sequences[next++];
                ++entries;
            }
        };
        std::string bytes;
        SequenceNumber last = 0;
        std::int64_t entries = 0;
        {
            Resetting newest(db.statement(kNewestPosting));
            newest->bind(1, key);
            if (newest->step()) {
                last = static_cast<SequenceNumber>(newest->integer(0));
                entries = newest->integer(1);
                bytes = newest->blob(2);
            }
        }
        if (entries > 0) {
            const SequenceNumber was = last;
            fill(bytes, last, entries);
            if (last != was) {
                Resetting extend(db.statement(kExtendPosting));
                extend->bind(1, key)
                    .bind(2, static_cast<std::int64_t>(was))
                    .bind(3, static_cast<std::int64_t>(last))
                    .bind(4, entries)
                    .bind_blob(5, bytes);
                extend->run();
            }
        }
        while (next < sequences.size()) {
            bytes.clear();
            last = 0;
            entries = 0;
            fill(bytes, last, entries);
            Resetting insert(db.statement(kInsertPosting));
            insert->bind(1, key)
                .bind(2, static_cast<std::int64_t>(last))
                .bind(3, entries)
                .bind_blob(4, bytes);
            insert->run();
        }
    }

    // Facts after indexed_through that may carry `key`, as seen from a snapshot ending at
    // `end`: the tail map's entries, plus ranges the map does not cover (another snapshot's
    // fold, or this write transaction's own inserts) whose every fact is a candidate. Only
    // entries above `above`, and of those the newest `newest`.
    struct RecentCandidates {
        std::vector<SequenceNumber> sequence_numbers;                        // ascending
        std::vector<std::pair<SequenceNumber, SequenceNumber>> scan_ranges;  // (low, high]
    };

    RecentCandidates recent_candidates(std::uint64_t key, SequenceNumber indexed_through,
                                       SequenceNumber end, SequenceNumber above = 0,
                                       std::size_t newest = SIZE_MAX) {
        RecentCandidates out;
        std::lock_guard lock(tail_mutex_);
        TailSlice slice = tail_slice(key, indexed_through, end, above);
        if (static_cast<std::size_t>(slice.last - slice.first) > newest)
            slice.first = slice.last - newest;
        out.sequence_numbers.assign(slice.first, slice.last);
        out.scan_ranges = std::move(slice.uncovered);
        return out;
    }

    // What the tail says of `key` after indexed_through, up to `end`: its entries above
    // `above` (views into the map; a type's list holds up to index_batch entries, so they are
    // found by binary search, not walked), and the ranges the map does not cover. Call with
    // tail_mutex_ held.
    struct TailSlice {
        const SequenceNumber* first = nullptr;
        const SequenceNumber* last = nullptr;
        std::vector<std::pair<SequenceNumber, SequenceNumber>> uncovered;  // (low, high]
    };

    TailSlice tail_slice(std::uint64_t key, SequenceNumber indexed_through, SequenceNumber end,
                         SequenceNumber above) {
        TailSlice slice;
        if (indexed_through < tail_.base)
            slice.uncovered.emplace_back(indexed_through, std::min(tail_.base, end));
        const SequenceNumber low = std::max({indexed_through, tail_.base, above});
        const SequenceNumber high = std::min(tail_.seen, end);
        if (auto it = tail_.keys.find(key); it != tail_.keys.end() && low < high) {
            const SequenceNumber* begin = it->second.data();
            const SequenceNumber* stop = begin + it->second.size();
            slice.first = std::upper_bound(begin, stop, low);
            slice.last = std::upper_bound(begin, stop, high);
        }
        if (std::max(tail_.seen, indexed_through) < end)
            slice.uncovered.emplace_back(std::max(tail_.seen, indexed_through), end);
        return slice;
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
        KeyMap keys;
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
