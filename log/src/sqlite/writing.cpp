// The SQLite engine's write path: one transaction per group (BEGIN IMMEDIATE takes the file's
// write lock, so the context checks and the inserts are one atomic step across processes).
#include "factstr/env.hpp"
#include "factstr/errors.hpp"
#include "factstr/internal/evaluation.hpp"
#include "reading.hpp"
#include "sqlite_engine.hpp"
#include "statements.hpp"

namespace factstr::sqlite {

SequenceNumber SqliteBackend::commit_group(std::vector<WriteRequest*>& group) {
    std::lock_guard lock(write_mutex_);
    Connection& db = *writer_;
    std::vector<std::string> new_types;
    std::vector<AcceptedWrite> accepted;
    SequenceNumber head = 0;
    SequenceNumber committed_before = 0;
    try {
        db.statement(kBeginImmediate).run();
        // Everything visible now is committed: the view brings the key tail up to it, so
        // that the context checks read the index and the tail only.
        SqliteView view(db, types_, tail_);
        head = committed_before = view.head();
        accepted = decide_group(view, head, group);
        const std::int64_t now = env_.now().time_since_epoch().count();
        for (const AcceptedWrite& write : accepted) {
            const auto& events = write.request->events;
            const SequenceNumber last = write.first_sequence_number + events.size() - 1;
            for (const PreparedEvent& event : events) {
                ++head;
                const std::int64_t type = types_.intern(db, event.event_type, new_types);
                Resetting insert(db.statement(kInsertFact));
                insert->bind(1, static_cast<std::int64_t>(head))
                    .bind(2,
                          event.occurred_at ? event.occurred_at->time_since_epoch().count() : now)
                    .bind(3, type)
                    .bind(4, event.payload.compact)
                    .bind(5, static_cast<std::int64_t>(last));
                insert->run();
            }
        }
        db.statement(kCommit).run();
    } catch (...) {
        // Forgotten while the write lock is held: once it is released, another process may
        // give one of these ids to another type.
        types_.forget(new_types);
        sqlite3_exec(db.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
        for (WriteRequest* request : group) {
            request->result.reset();
            request->error = std::current_exception();
        }
        return 0;
    }
    if (accepted.empty()) return 0;
    tail_.add_committed(accepted, committed_before, head);
    try {
        tail_.fold_if_due(db, static_cast<SequenceNumber>(options_.index_batch), types_);
    } catch (const std::exception&) {
        // The appends are committed; folding is retried after the next commit.
    }
    return head;
}

}  // namespace factstr::sqlite
