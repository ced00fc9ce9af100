#include "key_tail.hpp"

#include <algorithm>

#include "factstr/errors.hpp"
#include "factstr/json.hpp"
#include "postings.hpp"
#include "statements.hpp"

namespace factstr::sqlite {
namespace {

// Adds the keys (event type and payload) of the facts in (after, end], read from the log, to
// `keys`.
void read_keys(Connection& db, SequenceNumber after, SequenceNumber end, KeyMap& keys,
               TypeCache& types) {
    Resetting rows(db.statement(kPayloadsAsc));
    rows->bind(1, static_cast<std::int64_t>(after)).bind(2, static_cast<std::int64_t>(end));
    std::int64_t last_type = 0;
    std::uint64_t last_type_key = 0;
    while (rows->step()) {
        const auto seq = static_cast<SequenceNumber>(rows->integer(0));
        if (rows->integer(1) != last_type || last_type == 0) {
            last_type = rows->integer(1);
            last_type_key = static_cast<std::uint64_t>(types.key(db, last_type));
        }
        keys[last_type_key].push_back(seq);
        for (std::uint64_t key : json::index_keys_of(rows->text(2)))
            keys[key].push_back(seq);
    }
}

}  // namespace

SequenceNumber indexed_through_on(Connection& db) {
    Resetting at(db.statement(kIndexedThrough));
    if (!at->step())
        throw StoreError(ErrorCode::corrupt_database,
                         "sqlite:" + db.path() + ": key_index_state is empty");
    return static_cast<SequenceNumber>(at->integer(0));
}

SequenceNumber head_on(Connection& db) {
    Resetting head(db.statement(kHead));
    head->step();
    return head->is_null(0) ? 0 : static_cast<SequenceNumber>(head->integer(0));
}

void KeyTail::refresh(Connection& db, SequenceNumber indexed_through, SequenceNumber end,
                      TypeCache& types) {
    std::lock_guard lock(mutex_);
    if (indexed_through > base_) {
        keys_.clear();
        base_ = seen_ = indexed_through;
    }
    if (base_ > indexed_through || seen_ >= end) return;
    try {
        read_keys(db, seen_, end, keys_, types);
    } catch (...) {
        // Part of the range may be in the map: start it over from its base.
        keys_.clear();
        seen_ = base_;
        throw;
    }
    seen_ = end;
}

void KeyTail::add_committed(const std::vector<AcceptedWrite>& writes,
                            SequenceNumber committed_before, SequenceNumber head) {
    std::lock_guard lock(mutex_);
    if (seen_ != committed_before) return;  // the next refresh reads it instead
    const std::string* last_type = nullptr;
    std::uint64_t last_type_key = 0;
    for (const AcceptedWrite& write : writes) {
        SequenceNumber seq = write.first_sequence_number;
        for (const PreparedEvent& event : write.request->events) {
            if (!last_type || *last_type != event.event_type) {
                last_type = &event.event_type;
                last_type_key = json::type_index_key(event.event_type);
            }
            keys_[last_type_key].push_back(seq);
            for (std::uint64_t key : event.payload.index_keys)
                keys_[key].push_back(seq);
            ++seq;
        }
    }
    seen_ = head;
}

KeyTail::Slice KeyTail::slice(std::uint64_t key, SequenceNumber indexed_through, SequenceNumber end,
                              SequenceNumber above) const {
    Slice slice;
    if (indexed_through < base_)
        slice.uncovered.emplace_back(indexed_through, std::min(base_, end));
    const SequenceNumber low = std::max({indexed_through, base_, above});
    const SequenceNumber high = std::min(seen_, end);
    if (auto it = keys_.find(key); it != keys_.end() && low < high) {
        const SequenceNumber* begin = it->second.data();
        const SequenceNumber* stop = begin + it->second.size();
        slice.first = std::upper_bound(begin, stop, low);
        slice.last = std::upper_bound(begin, stop, high);
    }
    if (std::max(seen_, indexed_through) < end)
        slice.uncovered.emplace_back(std::max(seen_, indexed_through), end);
    return slice;
}

KeyTail::Candidates KeyTail::candidates(std::uint64_t key, SequenceNumber indexed_through,
                                        SequenceNumber end, SequenceNumber above,
                                        std::size_t newest) {
    Candidates out;
    std::lock_guard lock(mutex_);
    Slice found = slice(key, indexed_through, end, above);
    if (static_cast<std::size_t>(found.last - found.first) > newest)
        found.first = found.last - newest;
    out.sequence_numbers.assign(found.first, found.last);
    out.scan_ranges = std::move(found.uncovered);
    return out;
}

std::uint64_t KeyTail::count(std::uint64_t key, SequenceNumber indexed_through, SequenceNumber low,
                             SequenceNumber high) {
    std::lock_guard lock(mutex_);
    const Slice found = slice(key, indexed_through, high, low);
    std::uint64_t count = static_cast<std::uint64_t>(found.last - found.first);
    for (auto [from, to] : found.uncovered)
        if (to > std::max(from, low)) count += to - std::max(from, low);
    return count;
}

void KeyTail::fold_if_due(Connection& db, SequenceNumber index_batch, TypeCache& types) {
    {
        std::lock_guard lock(mutex_);
        if (seen_ - base_ < index_batch) return;
    }
    db.statement(kBeginImmediate).run();
    try {
        const SequenceNumber from = indexed_through_on(db);
        const SequenceNumber to = head_on(db);
        if (to - from >= index_batch) {
            // This process's map, when it covers exactly what is folded; else the facts,
            // read back.
            KeyMap folded;
            bool covered = false;
            {
                std::lock_guard lock(mutex_);
                covered = base_ == from && seen_ == to;
                if (covered) folded = keys_;
            }
            if (!covered) read_keys(db, from, to, folded, types);
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

}  // namespace factstr::sqlite
