// The memory backend: the semantic reference and the fastest path.
//
// Layout (per fact, for a 120-byte payload with four top-level scalars, about 190 bytes):
//   FactSlot      40 bytes   occurred_at, payload pointer and length, type, links
//   payload       n bytes    compact JSON in 1 MiB arena blocks
//   KeyLink       5 bytes    per indexed top-level scalar: the previous fact with that key
//   key table     16 bytes   per distinct (key, value), open addressing
// Every index is a chain through the facts, newest first: the head of each chain lives in a
// table (per event type, per top-level key/value hash) and each fact links to the previous
// fact of the same chain. The newest matching fact — the context version that append_if
// checks — is found at the head of a chain, without touching older facts.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "factstr/database/memory_database.hpp"
#include "factstr/errors.hpp"
#include "factstr/internal/backend.hpp"
#include "factstr/internal/evaluation.hpp"
#include "memory_storage.hpp"

namespace factstr {
namespace {

using namespace memory;

// Where a query's candidates come from.
struct Chain {
    bool by_type;
    ChainHead head;
};

struct Plan {
    bool scan = false;          // verify every fact in range
    std::vector<Chain> chains;  // otherwise: the union of these chains
    std::uint64_t chain_cost = 0;
    // When every live filter names event types: the accepted type ids (prefilter for scans).
    std::vector<bool> accepted_types;
    bool has_type_prefilter = false;
    // Key chains miss the unindexed keys of overflow facts: those are candidates of every
    // plan that looks up keys.
    bool uses_keys = false;
};

class MemoryBackend final : public Backend {
  public:
    std::string describe() const override { return "memory:"; }
    DatabaseLocation location() const override {
        DatabaseLocation where;
        where.memory = database_;
        return where;
    }

    // Each request is committed at once under the write lock: nothing to wait for, so
    // nothing to group.
    bool groups_commits() const override { return false; }

    SequenceNumber commit_group(std::vector<WriteRequest*>& group) override {
        std::unique_lock lock(mutex_);
        View view(*this);
        const SequenceNumber before = slots_.size();
        std::vector<AcceptedWrite> accepted = decide_group(view, before, group);
        for (const AcceptedWrite& write : accepted) {
            try {
                write_events(write.request->events);
            } catch (...) {
                write.request->result.reset();
                write.request->error = std::current_exception();
            }
        }
        return slots_.size() > before ? slots_.size() : 0;
    }

    void read(const std::function<void(LogView&)>& fn) override {
        std::shared_lock lock(mutex_);
        View view(*this);
        fn(view);
    }

    SequenceNumber head() override { return committed_head_.load(std::memory_order_acquire); }

    std::optional<SequenceNumber> load_cursor(std::string_view name) override {
        std::lock_guard lock(cursor_mutex_);
        auto it = cursors_.find(std::string(name));
        if (it == cursors_.end()) return std::nullopt;
        return it->second.position;
    }

    void save_cursor(std::string_view name, SequenceNumber position,
                     std::string_view query_json) override {
        std::lock_guard lock(cursor_mutex_);
        auto [it, inserted] = cursors_.try_emplace(std::string(name));
        it->second.name = name;
        it->second.position = std::max(it->second.position, position);
        it->second.query_json = query_json;
    }

    std::vector<DurableCursorInfo> cursors() override {
        std::lock_guard lock(cursor_mutex_);
        std::vector<DurableCursorInfo> out;
        for (const auto& [name, info] : cursors_)
            out.push_back(info);
        return out;
    }

    std::optional<std::uint64_t> storage_bytes() override { return memory_bytes(); }

    // Bytes held by the log and its indexes (for the benchmark's bytes-per-fact figure).
    std::size_t memory_bytes() const {
        std::shared_lock lock(mutex_);
        return slots_.bytes() + links_.bytes() + payloads_.bytes() + keys_.bytes();
    }

  private:
    void write_events(std::vector<PreparedEvent>& events) {
        const std::size_t first = slots_.size();
        if (first + events.size() >= std::numeric_limits<std::uint32_t>::max())
            throw StoreError(ErrorCode::storage_failure,
                             "memory store is full: it holds at most 4294967294 facts");
        const std::int64_t now = now_micros();
        for (PreparedEvent& event : events) {
            const std::uint32_t position = static_cast<std::uint32_t>(slots_.size());
            const std::uint32_t type_id = intern_type(event.event_type);
            TypeEntry& type = types_[type_id];
            FactSlot slot{};
            slot.payload = payloads_.copy(event.payload.compact);
            slot.payload_size = static_cast<std::uint32_t>(event.payload.compact.size());
            slot.occurred_at_us =
                event.occurred_at ? event.occurred_at->time_since_epoch().count() : now;
            slot.type_id = type_id;
            slot.previous_same_type = type.head;
            slot.links_begin = links_.size();
            const std::size_t key_count =
                std::min(event.payload.index_keys.size(), kMaxIndexedKeys);
            slot.key_count = key_count;
            for (std::size_t k = 0; k < key_count; ++k) {
                KeyTable::Entry& entry = keys_.find_or_insert(event.payload.index_keys[k]);
                links_.push_back(KeyLink{entry.head, entry.link()});
                std::uint32_t count = std::min<std::uint32_t>(entry.count() + 1, 0xffffff);
                entry.head = position + 1;
                entry.count_and_link = (count << 8) | static_cast<std::uint32_t>(k);
            }
            if (event.payload.index_keys.size() > kMaxIndexedKeys) overflow_.push_back(position);
            type.head = position + 1;
            ++type.count;
            slots_.push_back(slot);
        }
        slots_[slots_.size() - 1].batch_end = 1;
        committed_head_.store(slots_.size(), std::memory_order_release);
    }

    std::uint32_t intern_type(const std::string& name) {
        // Runs of one type are common (a batch, a stream of commands): the last type first.
        if (last_type_id_ < types_.size() && types_[last_type_id_].name == name)
            return last_type_id_;
        auto it = type_ids_.find(name);
        if (it != type_ids_.end()) return last_type_id_ = it->second;
        const auto id = static_cast<std::uint32_t>(types_.size());
        types_.push_back(TypeEntry{name});
        type_ids_.emplace(name, id);
        return last_type_id_ = id;
    }

    const TypeEntry* find_type(std::string_view name) const {
        auto it = type_ids_.find(name);
        return it == type_ids_.end() ? nullptr : &types_[it->second];
    }

    // Picks, per filter, the cheaper of its type chains and its predicate chains. A filter
    // with neither (or an unindexable predicate and no types) makes the plan a scan.
    Plan make_plan(const CompiledQuery& query) const {
        Plan plan;
        if (query.matches_all()) {
            plan.scan = true;
            return plan;
        }
        plan.has_type_prefilter = true;
        plan.accepted_types.assign(types_.size(), false);
        constexpr std::uint64_t kUnusable = std::numeric_limits<std::uint64_t>::max();
        for (const CompiledFilter& filter : query.filters()) {
            if (filter.matches_nothing()) continue;
            std::vector<Chain> type_chains;
            std::uint64_t type_cost = kUnusable;
            if (filter.event_types) {
                type_cost = 0;
                for (const std::string& name : *filter.event_types) {
                    if (const TypeEntry* type = find_type(name)) {
                        type_chains.push_back(Chain{true, ChainHead{type->head, 0}});
                        type_cost += type->count;
                        plan.accepted_types[static_cast<std::size_t>(type - types_.data())] = true;
                    }
                }
            } else {
                plan.has_type_prefilter = false;
            }
            std::vector<Chain> key_chains;
            std::uint64_t key_cost = kUnusable;
            if (filter.predicates) {
                key_cost = 0;
                for (const CompiledPredicate& predicate : *filter.predicates) {
                    if (predicate.index_keys.empty()) {
                        key_cost = kUnusable;
                        break;
                    }
                    // The rarest of the predicate's keys; a missing key means no fact matches.
                    const KeyTable::Entry* best = nullptr;
                    bool missing = false;
                    for (std::uint64_t key : predicate.index_keys) {
                        const KeyTable::Entry* entry = keys_.find(key);
                        if (!entry) {
                            missing = true;
                            break;
                        }
                        if (!best || entry->count() < best->count()) best = entry;
                    }
                    if (missing) continue;
                    key_chains.push_back(Chain{false, ChainHead{best->head, best->link()}});
                    key_cost += best->count();
                }
            }
            if (type_cost == kUnusable && key_cost == kUnusable) {
                plan.scan = true;
                plan.chains.clear();
                return plan;
            }
            if (key_cost < type_cost) {
                plan.uses_keys = true;
                plan.chains.insert(plan.chains.end(), key_chains.begin(), key_chains.end());
                plan.chain_cost += key_cost;
            } else {
                plan.chains.insert(plan.chains.end(), type_chains.begin(), type_chains.end());
                plan.chain_cost += type_cost;
            }
        }
        return plan;
    }

    ChainHead next_in_chain(const Chain& chain, ChainHead at) const {
        const FactSlot& slot = slots_[at.position - 1];
        if (chain.by_type) return ChainHead{slot.previous_same_type, 0};
        const KeyLink& link = links_[slot.links_begin + at.link];
        return ChainHead{link.previous, link.previous_link};
    }

    // A read view under the caller's lock (shared for reads, unique for writes). Candidates go
    // to the sink in blocks of views into the arena (padded, so parsed in place).
    class View final : public LogView {
      public:
        explicit View(const MemoryBackend& engine) : engine_(engine) {}

        SequenceNumber head() override { return engine_.slots_.size(); }

        SequenceNumber batch_end_at(SequenceNumber position) override {
            return engine_.batch_end_of(position - 1);
        }

        void ascending(const CompiledQuery& query, SequenceNumber after, SequenceNumber end,
                       CandidateSink& sink) override {
            end = std::min<SequenceNumber>(end, engine_.slots_.size());
            if (after >= end) return;
            const Plan plan = engine_.make_plan(query);
            Blocks blocks(engine_, sink, plan, sink.needs_batch_ends());
            // Scan the range or walk the chains, whichever touches fewer facts.
            if (plan.scan || end - after <= plan.chain_cost) {
                sink.begin_source(true, true);
                for (std::size_t position = after; position < end; ++position)
                    if (!blocks.add(position)) return;
                blocks.flush();
                return;
            }
            const bool sole = plan.chains.size() == 1 && !plan.uses_keys;
            std::vector<std::uint32_t> positions;
            for (const Chain& chain : plan.chains) {
                positions.clear();
                for (ChainHead at = chain.head; at.position > after;
                     at = engine_.next_in_chain(chain, at))
                    if (at.position <= end) positions.push_back(at.position - 1);
                sink.begin_source(sole, true);
                blocks.restart();
                bool more = true;
                for (auto it = positions.rbegin(); more && it != positions.rend(); ++it)
                    more = blocks.add(*it);
                if (more) blocks.flush();
            }
            if (plan.uses_keys) {
                sink.begin_source(false, true);
                blocks.restart();
                bool more = true;
                for (std::uint32_t position : engine_.overflow_)
                    if (more && position >= after && position < end) more = blocks.add(position);
                if (more) blocks.flush();
            }
        }

        void newest_first(const CompiledQuery& query, SequenceNumber at_most,
                          CandidateSink& sink) override {
            at_most = std::min<SequenceNumber>(at_most, engine_.slots_.size());
            const Plan plan = engine_.make_plan(query);
            Blocks blocks(engine_, sink, plan, false);
            if (plan.scan) {
                sink.begin_source(true, true);
                for (std::size_t position = at_most; position > sink.floor(); --position)
                    if (!blocks.add(position - 1)) return;
                blocks.flush();
                return;
            }
            for (const Chain& chain : plan.chains) {
                sink.begin_source(false, true);
                blocks.restart();
                bool more = true;
                for (ChainHead at = chain.head; more && at.position > sink.floor();
                     at = engine_.next_in_chain(chain, at))
                    if (at.position <= at_most) more = blocks.add(at.position - 1);
                if (more) blocks.flush();
            }
            if (plan.uses_keys) {
                sink.begin_source(false, true);
                blocks.restart();
                bool more = true;
                for (auto it = engine_.overflow_.rbegin();
                     more && it != engine_.overflow_.rend() && *it + 1 > sink.floor(); ++it)
                    if (*it < at_most) more = blocks.add(*it);
                if (more) blocks.flush();
            }
        }

      private:
        // Facts of one source, handed over kBlock at a time; facts of a type the plan cannot
        // accept are left out here (a prefilter by type id, before any payload is looked at).
        class Blocks {
          public:
            // `batch_ends`: ascending reads hand over where each fact's batch ends (newest-first
            // reads do not need it, and finding it walks the batch).
            Blocks(const MemoryBackend& engine, CandidateSink& sink, const Plan& plan,
                   bool batch_ends)
                : engine_(engine), sink_(sink), plan_(plan), batch_ends_(batch_ends) {}
            // False when the sink ended the source.
            bool add(std::size_t position) {
                const FactSlot& slot = engine_.slots_[position];
                if (plan_.has_type_prefilter && !plan_.accepted_types[slot.type_id]) return true;
                // Positions ascend: a batch end found holds for the facts after it in the batch
                // (batch_end_of walks the batch, so once per fact would be quadratic).
                if (batch_ends_ && position + 1 > open_batch_end_)
                    open_batch_end_ = engine_.batch_end_of(position);
                block_[size_++] =
                    StoredFact{position + 1, slot.occurred_at_us, engine_.types_[slot.type_id].name,
                               std::string_view(slot.payload, slot.payload_size), open_batch_end_};
                if (size_ < kBlock) return true;
                return flush();
            }
            bool flush() {
                if (size_ == 0) return true;
                const std::size_t n = size_;
                size_ = 0;
                return sink_.take(std::span<const StoredFact>(block_.data(), n));
            }
            // A new source: its positions start over.
            void restart() {
                size_ = 0;
                open_batch_end_ = 0;
            }

          private:
            static constexpr std::size_t kBlock = 64;
            const MemoryBackend& engine_;
            CandidateSink& sink_;
            const Plan& plan_;
            std::array<StoredFact, kBlock> block_;
            const bool batch_ends_;
            std::size_t size_ = 0;
            SequenceNumber open_batch_end_ = 0;
        };

        const MemoryBackend& engine_;
    };

    SequenceNumber batch_end_of(std::size_t position) const {
        while (!slots_[position].batch_end)
            ++position;
        return position + 1;
    }

    const std::shared_ptr<database::MemoryDatabase> database_ = database::make_memory_database();
    mutable std::shared_mutex mutex_;
    ChunkedVector<FactSlot> slots_;
    ChunkedVector<KeyLink, 18> links_;
    ByteArena payloads_;
    KeyTable keys_;
    std::vector<std::uint32_t> overflow_;  // positions of facts with unindexed keys
    std::vector<TypeEntry> types_;
    std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>> type_ids_;
    std::uint32_t last_type_id_ = 0;  // the type of the newest fact (intern_type's first look)
    std::atomic<SequenceNumber> committed_head_{0};

    std::mutex cursor_mutex_;
    std::map<std::string, DurableCursorInfo> cursors_;
};

}  // namespace

std::unique_ptr<Backend> make_memory_backend() {
    return std::make_unique<MemoryBackend>();
}

}  // namespace factstr
