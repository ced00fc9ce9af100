// The SQLite engine: opening a file, read snapshots on pooled connections, durable cursors,
// and commits of other processes (see sqlite_engine.hpp for the design).
#include <sys/stat.h>

#include "factstr/env.hpp"
#include "factstr/errors.hpp"
#include "factstr/internal/evaluation.hpp"
#include "reading.hpp"
#include "schema.hpp"
#include "sqlite_engine.hpp"
#include "statements.hpp"

namespace factstr::sqlite {
namespace {

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

}  // namespace

SqliteBackend::SqliteBackend(SqliteOptions options)
    : options_(std::move(options)),
      env_(options_.env ? *options_.env : Env::system()),
      vfs_name_(sqlite_vfs_name(env_)) {
    refuse_foreign_file(options_.path);
    writer_ = open_connection(SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    ensure_schema(*writer_, types_);
    writer_->exec("PRAGMA journal_mode=WAL");
    writer_->exec(options_.sync == SqliteOptions::Sync::full ? "PRAGMA synchronous=FULL"
                                                             : "PRAGMA synchronous=NORMAL");
}

std::unique_ptr<Connection> SqliteBackend::open_connection(int flags) {
    auto connection =
        std::make_unique<Connection>(options_.path, flags, options_.busy_timeout_ms, vfs_name_);
    connection->exec("PRAGMA cache_size=-32768");
    return connection;
}

template <class Fn>
auto SqliteBackend::with_reader(Fn&& fn) {
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

void SqliteBackend::read(const std::function<void(LogView&)>& fn) {
    with_reader([&](Connection& db) {
        ReadTransaction transaction(db);
        SqliteView view(db, types_, tail_);
        fn(view);
    });
}

SequenceNumber SqliteBackend::head() {
    return with_reader([&](Connection& db) { return head_on(db); });
}

std::optional<SequenceNumber> SqliteBackend::load_cursor(std::string_view name) {
    return with_reader([&](Connection& db) -> std::optional<SequenceNumber> {
        Resetting load(db.statement(kLoadCursor));
        load->bind(1, name);
        if (!load->step()) return std::nullopt;
        return static_cast<SequenceNumber>(load->integer(0));
    });
}

void SqliteBackend::save_cursor(std::string_view name, SequenceNumber position,
                                std::string_view query_json) {
    std::lock_guard lock(write_mutex_);
    Resetting save(writer_->statement(kSaveCursor));
    save->bind(1, name)
        .bind(2, static_cast<std::int64_t>(position))
        .bind(3, query_json)
        .bind(4, env_.now().time_since_epoch().count());
    save->run();
}

std::vector<DurableCursorInfo> SqliteBackend::cursors() {
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

std::optional<std::uint64_t> SqliteBackend::storage_bytes() {
    // The database file and its write-ahead log (not the shared-memory index).
    std::uint64_t total = 0;
    for (const char* suffix : {"", "-wal"}) {
        struct stat info {};
        if (::stat((options_.path + suffix).c_str(), &info) == 0)
            total += static_cast<std::uint64_t>(info.st_size);
    }
    return total;
}

std::optional<SequenceNumber> SqliteBackend::poll_external_commits() {
    std::lock_guard lock(poll_mutex_);
    if (!poller_) poller_ = open_connection(SQLITE_OPEN_READWRITE);
    Resetting version(poller_->statement(kDataVersion));
    version->step();
    const std::int64_t current = version->integer(0);
    if (current == last_data_version_) return std::nullopt;
    last_data_version_ = current;
    return head_on(*poller_);
}

}  // namespace factstr::sqlite

namespace factstr {

std::unique_ptr<Backend> make_sqlite_backend(SqliteOptions options) {
    if (options.path.empty())
        throw InvalidInput(ErrorCode::invalid_argument,
                           "sqlite: needs a file path, e.g. sqlite:./facts.db");
    return std::make_unique<sqlite::SqliteBackend>(std::move(options));
}

}  // namespace factstr
