#include "reading.hpp"

#include <algorithm>

#include "factstr/json.hpp"
#include "postings.hpp"
#include "statements.hpp"

namespace factstr::sqlite {
namespace {

// Rows of the facts table (FACT_COLUMNS) copied out of their statement, so that a block of
// them can be handed over at once; each payload is followed by json::kParsePadding bytes.
class FactBlock {
  public:
    FactBlock(Connection& db, TypeCache& types, std::size_t capacity)
        : db_(db), types_(types), capacity_(capacity) {}

    void add(Statement& row) {
        const std::string_view payload = row.text(3);
        rows_.push_back(Row{static_cast<SequenceNumber>(row.integer(0)), row.integer(1),
                            &types_.name(db_, row.integer(2)), buffer_.size(), payload.size(),
                            static_cast<SequenceNumber>(row.integer(4))});
        buffer_.append(payload);
        buffer_.append(json::kParsePadding, '\0');
    }
    bool full() const { return rows_.size() >= capacity_; }
    bool empty() const { return rows_.empty(); }
    void set_capacity(std::size_t capacity) { capacity_ = capacity; }
    std::size_t capacity() const { return capacity_; }

    // Hands the block over and empties it; false when the sink ended the source.
    bool flush(CandidateSink& sink) {
        if (rows_.empty()) return true;
        facts_.clear();
        for (const Row& r : rows_)
            facts_.push_back(StoredFact{r.sequence_number, r.occurred_at, *r.event_type,
                                        std::string_view(buffer_.data() + r.offset, r.size),
                                        r.batch_last});
        const bool more = sink.take(facts_);
        rows_.clear();
        buffer_.clear();
        return more;
    }

  private:
    struct Row {
        SequenceNumber sequence_number;
        std::int64_t occurred_at;
        const std::string* event_type;
        std::size_t offset, size;
        SequenceNumber batch_last;
    };
    Connection& db_;
    TypeCache& types_;
    std::size_t capacity_;
    std::vector<Row> rows_;
    std::string buffer_;
    std::vector<StoredFact> facts_;
};

constexpr std::size_t kBlock = 256;

}  // namespace

SqliteView::SqliteView(Connection& db, TypeCache& types, KeyTail& tail)
    : db_(db), types_(types), tail_(tail) {
    head_ = head_on(db);
    indexed_through_ = indexed_through_on(db);
    tail_.refresh(db, indexed_through_, head_, types_);
}

SequenceNumber SqliteView::batch_end_at(SequenceNumber position) {
    Resetting at(db_.statement(kBatchLastAt));
    at->bind(1, static_cast<std::int64_t>(position));
    if (!at->step()) return position;
    return static_cast<SequenceNumber>(at->integer(0));
}

std::vector<SqliteView::Leaf> SqliteView::plan(const CompiledQuery& query) {
    std::vector<Leaf> leaves;
    if (query.matches_all()) return {Leaf{Leaf::Kind::scan}};
    for (const CompiledFilter& filter : query.filters()) {
        if (filter.matches_nothing()) continue;
        bool indexable_predicates = filter.predicates.has_value();
        if (filter.predicates)
            for (const auto& p : *filter.predicates)
                if (p.index_keys.empty()) indexable_predicates = false;
        if (indexable_predicates) {
            for (const auto& p : *filter.predicates)
                leaves.push_back(Leaf{Leaf::Kind::key, rarest_key(p.index_keys)});
        } else if (filter.event_types) {
            for (const std::string& name : *filter.event_types)
                if (auto id = types_.id(db_, name))
                    leaves.push_back(Leaf{Leaf::Kind::key,
                                          static_cast<std::int64_t>(json::type_index_key(name)),
                                          *id});
        } else {
            return {Leaf{Leaf::Kind::scan}};
        }
    }
    std::sort(leaves.begin(), leaves.end(), [](const Leaf& a, const Leaf& b) {
        return std::pair(a.kind, a.value) < std::pair(b.kind, b.value);
    });
    leaves.erase(std::unique(leaves.begin(), leaves.end(),
                             [](const Leaf& a, const Leaf& b) {
                                 return a.kind == b.kind && a.value == b.value;
                             }),
                 leaves.end());
    return leaves;
}

std::int64_t SqliteView::rarest_key(const std::vector<std::uint64_t>& keys) {
    if (keys.size() == 1) return static_cast<std::int64_t>(keys[0]);
    std::int64_t best = static_cast<std::int64_t>(keys[0]);
    std::int64_t best_count = -1;
    for (std::uint64_t key : keys) {
        Resetting probe(db_.statement(kPostingProbe));
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

std::uint64_t SqliteView::candidate_count(std::int64_t key, SequenceNumber low,
                                          SequenceNumber high) {
    std::uint64_t count = 0;
    const SequenceNumber indexed_high = std::min(high, indexed_through_);
    if (low < indexed_high) {
        Resetting rows(db_.statement(kPostingCount));
        rows->bind(1, key)
            .bind(2, static_cast<std::int64_t>(low))
            .bind(3, static_cast<std::int64_t>(indexed_high));
        if (rows->step()) count += static_cast<std::uint64_t>(rows->integer(0));
    }
    return count + tail_.count(static_cast<std::uint64_t>(key), indexed_through_, low, high);
}

bool SqliteView::scan(SequenceNumber low, SequenceNumber high, bool descending,
                      const std::vector<std::int64_t>& type_ids, CandidateSink& sink) {
    if (low >= high) return true;
    FactBlock block(db_, types_, kBlock);
    Resetting rows(db_.statement(descending ? kScanDesc : kScanAsc));
    rows->bind(1, static_cast<std::int64_t>(low)).bind(2, static_cast<std::int64_t>(high));
    while (rows->step()) {
        if (!type_ids.empty() &&
            std::find(type_ids.begin(), type_ids.end(), rows->integer(2)) == type_ids.end())
            continue;
        block.add(*rows);
        if (block.full() && !block.flush(sink)) return false;
    }
    return block.flush(sink);
}

bool SqliteView::read_facts(const std::vector<SequenceNumber>& sequences, bool growing,
                            CandidateSink& sink) {
    FactBlock block(db_, types_, growing ? 1 : kBlock);
    auto added = [&] {
        if (!block.full()) return true;
        if (!block.flush(sink)) return false;
        if (growing && block.capacity() < 64) block.set_capacity(block.capacity() * 4);
        return true;
    };
    const bool ascending = sequences.size() < 2 || sequences[0] < sequences[1];
    for (std::size_t i = 0; i < sequences.size();) {
        std::size_t j = i + 1;
        // A run of consecutive numbers (a batch of one type, say) is read as one range.
        while (ascending && j < sequences.size() && sequences[j] == sequences[j - 1] + 1)
            ++j;
        if (j - i == 1) {
            bool found = false;
            {
                Resetting at(db_.statement(kFactAt));
                at->bind(1, static_cast<std::int64_t>(sequences[i]));
                if (at->step()) {
                    block.add(*at);
                    found = true;
                }
            }
            if (found && !added()) return false;
        } else {
            Resetting range(db_.statement(kScanAsc));
            range->bind(1, static_cast<std::int64_t>(sequences[i] - 1))
                .bind(2, static_cast<std::int64_t>(sequences[j - 1]));
            while (range->step()) {
                block.add(*range);
                if (!added()) return false;
            }
        }
        i = j;
    }
    return block.flush(sink);
}

void SqliteView::ascending(const CompiledQuery& query, SequenceNumber after, SequenceNumber end,
                           CandidateSink& sink) {
    end = std::min(end, head_);
    if (after >= end) return;
    const std::vector<Leaf> leaves = plan(query);
    if (leaves.empty()) return;
    // Event types that together make up much of the range (a projector reading every type it
    // folds, a broad query by type): one pass over the facts in order, skipping other types
    // by id, costs less than a lookup per fact.
    if (std::all_of(leaves.begin(), leaves.end(),
                    [](const Leaf& leaf) { return leaf.type_id != 0; })) {
        std::uint64_t candidates = 0;
        std::vector<std::int64_t> type_ids;
        for (const Leaf& leaf : leaves) {
            candidates += candidate_count(leaf.value, after, end);
            type_ids.push_back(leaf.type_id);
        }
        if (candidates * 4 >= end - after) {
            sink.begin_source(true, true);
            scan(after, end, false, type_ids, sink);
            return;
        }
    }
    const bool one = leaves.size() == 1;
    std::vector<SequenceNumber> sequences;
    for (const Leaf& leaf : leaves) {
        if (leaf.kind == Leaf::Kind::scan) {
            sink.begin_source(one, true);
            scan(after, end, false, {}, sink);
            continue;
        }
        sequences.clear();
        for_each_indexed(db_, leaf.value, after, std::min(end, indexed_through_), false,
                         [&](SequenceNumber seq) {
                             sequences.push_back(seq);
                             return true;
                         });
        auto recent =
            tail_.candidates(static_cast<std::uint64_t>(leaf.value), indexed_through_, end);
        for (SequenceNumber seq : recent.sequence_numbers)
            if (seq > after) sequences.push_back(seq);
        sink.begin_source(one && recent.scan_ranges.empty(), true);
        read_facts(sequences, false, sink);
        for (auto [low, high] : recent.scan_ranges) {
            sink.begin_source(false, true);
            scan(std::max(low, after), high, false, {}, sink);
        }
    }
}

void SqliteView::newest_first(const CompiledQuery& query, SequenceNumber at_most,
                              CandidateSink& sink) {
    at_most = std::min(at_most, head_);
    std::vector<SequenceNumber> sequences;
    for (const Leaf& leaf : plan(query)) {
        if (leaf.kind == Leaf::Kind::scan) {
            sink.begin_source(true, true);
            scan(sink.floor(), at_most, true, {}, sink);
            continue;
        }
        const auto key = static_cast<std::uint64_t>(leaf.value);
        // The tail newest first, a chunk at a time: a type's list is long, and its newest
        // entry usually matches.
        constexpr std::size_t kChunk = 64;
        for (SequenceNumber high = at_most;;) {
            auto recent = tail_.candidates(key, indexed_through_, high, sink.floor(), kChunk);
            for (auto it = recent.scan_ranges.rbegin(); it != recent.scan_ranges.rend(); ++it) {
                sink.begin_source(false, true);
                scan(std::max(it->first, sink.floor()), it->second, true, {}, sink);
            }
            std::reverse(recent.sequence_numbers.begin(), recent.sequence_numbers.end());
            sink.begin_source(false, true);
            const bool more = read_facts(recent.sequence_numbers, true, sink);
            if (!more || recent.sequence_numbers.size() < kChunk) break;
            high = recent.sequence_numbers.back() - 1;
        }
        // The posting rows, newest first, a growing block of candidates at a time.
        sink.begin_source(false, true);
        sequences.clear();
        std::size_t want = 1;
        bool more = true;
        for_each_indexed(db_, leaf.value, sink.floor(), std::min(at_most, indexed_through_), true,
                         [&](SequenceNumber seq) {
                             sequences.push_back(seq);
                             if (sequences.size() < want) return true;
                             more = read_facts(sequences, false, sink);
                             sequences.clear();
                             want = std::min<std::size_t>(want * 4, 64);
                             return more;
                         });
        if (more && !sequences.empty()) read_facts(sequences, false, sink);
    }
}

}  // namespace factstr::sqlite
