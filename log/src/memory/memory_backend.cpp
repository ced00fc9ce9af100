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
#include <atomic>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "factstr/internal/backend.hpp"
#include "factstr/errors.hpp"

namespace factstr {
namespace {

constexpr std::uint32_t kNone = 0;  // chain end; positions are stored plus one
// Facts with more top-level scalars than this keep the rest unindexed and are listed as
// overflow facts, which every key lookup also checks.
constexpr std::size_t kMaxIndexedKeys = 255;

// Append-only storage in fixed chunks: growing never moves existing elements.
template <class T, std::size_t ChunkBits = 16>
class ChunkedVector {
  public:
    static constexpr std::size_t kChunk = std::size_t{1} << ChunkBits;

    std::size_t size() const { return size_; }
    T& operator[](std::size_t i) { return chunks_[i >> ChunkBits][i & (kChunk - 1)]; }
    const T& operator[](std::size_t i) const { return chunks_[i >> ChunkBits][i & (kChunk - 1)]; }
    void push_back(const T& value) {
        if ((size_ & (kChunk - 1)) == 0)
            chunks_.push_back(std::make_unique_for_overwrite<T[]>(kChunk));
        (*this)[size_++] = value;
    }
    std::size_t bytes() const { return chunks_.size() * kChunk * sizeof(T); }

  private:
    std::vector<std::unique_ptr<T[]>> chunks_;
    std::size_t size_ = 0;
};

class ByteArena {
  public:
    static constexpr std::size_t kBlock = 1 << 20;

    // Every copy is followed by at least json::kParsePadding readable bytes, so payloads
    // are parsed in place.
    const char* copy(std::string_view bytes) {
        if (bytes.size() > kBlock / 4) {
            large_.push_back(std::make_unique<char[]>(bytes.size() + json::kParsePadding));
            std::memcpy(large_.back().get(), bytes.data(), bytes.size());
            allocated_ += bytes.size();
            return large_.back().get();
        }
        if (blocks_.empty() || used_ + bytes.size() > kBlock) {
            blocks_.push_back(std::make_unique<char[]>(kBlock + json::kParsePadding));
            used_ = 0;
            allocated_ += kBlock;
        }
        char* at = blocks_.back().get() + used_;
        std::memcpy(at, bytes.data(), bytes.size());
        used_ += bytes.size();
        return at;
    }
    std::size_t bytes() const { return allocated_; }

  private:
    std::vector<std::unique_ptr<char[]>> blocks_;
    std::vector<std::unique_ptr<char[]>> large_;
    std::size_t used_ = 0;
    std::size_t allocated_ = 0;
};

struct FactSlot {
    const char* payload;
    std::int64_t occurred_at_us;
    std::uint64_t links_begin : 47;
    std::uint64_t key_count : 16;
    std::uint64_t batch_end : 1;
    std::uint32_t payload_size;
    std::uint32_t type_id;
    std::uint32_t previous_same_type;  // position + 1, or kNone
};

#pragma pack(push, 1)
struct KeyLink {
    std::uint32_t previous;      // position + 1 of the previous fact with this key, or kNone
    std::uint8_t previous_link;  // which of that fact's links continues the chain
};
#pragma pack(pop)

// Head of one chain: a fact position and the index of its link for this chain.
struct ChainHead {
    std::uint32_t position = kNone;
    std::uint8_t link = 0;
};

// Open-addressing table from (key, value) hash to the head of its chain.
class KeyTable {
  public:
    struct Entry {
        std::uint64_t hash;            // 0 = empty slot
        std::uint32_t head;            // position + 1
        std::uint32_t count_and_link;  // count (saturating, 24 bits) << 8 | head link
        std::uint32_t count() const { return count_and_link >> 8; }
        std::uint8_t link() const { return count_and_link & 0xff; }
    };

    const Entry* find(std::uint64_t hash) const {
        if (entries_.empty()) return nullptr;
        hash = normalize(hash);
        for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
            if (entries_[i].hash == hash) return &entries_[i];
            if (entries_[i].hash == 0) return nullptr;
        }
    }

    Entry& find_or_insert(std::uint64_t hash) {
        if ((used_ + 1) * 10 > entries_.size() * 7) grow();
        hash = normalize(hash);
        for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
            if (entries_[i].hash == hash) return entries_[i];
            if (entries_[i].hash == 0) {
                ++used_;
                entries_[i] = Entry{hash, kNone, 0};
                return entries_[i];
            }
        }
    }

    std::size_t bytes() const { return entries_.size() * sizeof(Entry); }

  private:
    static std::uint64_t normalize(std::uint64_t hash) { return hash == 0 ? 1 : hash; }

    void grow() {
        std::vector<Entry> old = std::move(entries_);
        entries_.assign(old.empty() ? 1024 : old.size() * 2, Entry{0, 0, 0});
        mask_ = entries_.size() - 1;
        for (const Entry& e : old) {
            if (e.hash == 0) continue;
            std::size_t i = e.hash & mask_;
            while (entries_[i].hash != 0)
                i = (i + 1) & mask_;
            entries_[i] = e;
        }
    }

    std::vector<Entry> entries_;
    std::size_t mask_ = 0;
    std::size_t used_ = 0;
};

struct TypeEntry {
    std::string name;
    std::uint32_t head = kNone;
    std::uint64_t count = 0;
};

struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

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
    DatabaseLocation location() const override { return {}; }

    AppendResult append(std::vector<PreparedEvent>&& events) override {
        AppendResult result;
        {
            std::unique_lock lock(mutex_);
            result = write(events);
        }
        notify_committed(result.last_sequence_number);
        return result;
    }

    AppendIfResult append_if(std::vector<PreparedEvent>&& events, const CompiledQuery& context,
                             std::optional<SequenceNumber> expected) override {
        AppendResult result;
        {
            std::unique_lock lock(mutex_);
            std::optional<SequenceNumber> actual = highest_match(context, slots_.size());
            if (actual != expected) return ConditionalAppendConflict{expected, actual};
            result = write(events);
        }
        notify_committed(result.last_sequence_number);
        return result;
    }

    QueryResult query(const CompiledQuery& query) override {
        std::shared_lock lock(mutex_);
        const std::size_t end = slots_.size();
        const std::size_t after =
            std::min<std::size_t>(query.min_sequence_number().value_or(0), end);
        QueryResult result;
        Plan plan = make_plan(query);
        for_each_match(query, plan, after, end, [&](std::size_t position) {
            result.event_records.push_back(record_at(position));
            return true;
        });
        if (!result.event_records.empty()) {
            // Any match above the cursor was returned, so the newest returned is the newest.
            result.last_returned_sequence_number = result.event_records.back().sequence_number;
            result.current_context_version = result.last_returned_sequence_number;
        } else {
            result.current_context_version = highest_match(query, after, &plan);
        }
        return result;
    }

    BatchPage read_batches(SequenceNumber after, const CompiledQuery& filter,
                           std::size_t max_facts) override {
        std::shared_lock lock(mutex_);
        const std::size_t end = slots_.size();
        BatchPage page;
        page.scanned_through = std::max<SequenceNumber>(after, end);
        if (after >= end) return page;
        Plan plan = make_plan(filter);
        std::size_t collected = 0;
        SequenceNumber open_batch_end = 0;
        for_each_match(filter, plan, after, end, [&](std::size_t position) {
            // Positions ascend: one still inside the open batch needs no look for its end
            // (batch_end_of walks the batch, so calling it per fact was quadratic per batch).
            if (position + 1 > open_batch_end) {
                const SequenceNumber batch_end = batch_end_of(position);
                if (collected >= max_facts && !page.batches.empty()) {
                    // Stop between batches; everything before this batch was examined.
                    page.scanned_through = page.batches.back().last_sequence_number;
                    return false;
                }
                page.batches.push_back(CommittedBatch{batch_end, {}});
                open_batch_end = batch_end;
            }
            page.batches.back().records.push_back(record_at(position));
            ++collected;
            return true;
        });
        return page;
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
    AppendResult write(std::vector<PreparedEvent>& events) {
        const std::size_t first = slots_.size();
        if (first + events.size() >= std::numeric_limits<std::uint32_t>::max())
            throw StoreError(ErrorCode::storage_failure,
                             "memory store is full: it holds at most 4294967294 facts");
        const auto now = std::chrono::time_point_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now())
                             .time_since_epoch()
                             .count();
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
        return AppendResult{first + 1, slots_.size(), events.size()};
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

    bool verify(const CompiledQuery& query, const Plan& plan, std::size_t position) const {
        const FactSlot& slot = slots_[position];
        if (plan.has_type_prefilter && !plan.accepted_types[slot.type_id]) return false;
        return query.matches(types_[slot.type_id].name,
                             std::string_view(slot.payload, slot.payload_size), true);
    }

    // Calls `visit(position)` for every matching fact with after < position + 1 <= end,
    // ascending, until it returns false. Scans the range or walks the chains, whichever
    // touches fewer facts.
    template <class Visit>
    void for_each_match(const CompiledQuery& query, const Plan& plan, std::size_t after,
                        std::size_t end, Visit&& visit) const {
        if (plan.scan || end - after <= plan.chain_cost) {
            for (std::size_t position = after; position < end; ++position)
                if (verify(query, plan, position) && !visit(position)) return;
            return;
        }
        std::vector<std::uint32_t> candidates;
        for (const Chain& chain : plan.chains) {
            for (ChainHead at = chain.head; at.position > after; at = next_in_chain(chain, at))
                if (at.position <= end) candidates.push_back(at.position - 1);
        }
        if (plan.uses_keys)
            for (std::uint32_t position : overflow_)
                if (position >= after && position < end) candidates.push_back(position);
        std::sort(candidates.begin(), candidates.end());
        candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
        for (std::uint32_t position : candidates)
            if (verify(query, plan, position) && !visit(position)) return;
    }

    // The highest matching sequence number at or below `end`, or none.
    std::optional<SequenceNumber> highest_match(const CompiledQuery& query, std::size_t end,
                                                const Plan* known_plan = nullptr) const {
        Plan local;
        if (!known_plan) local = make_plan(query);
        const Plan& plan = known_plan ? *known_plan : local;
        if (query.matches_all()) {
            if (end == 0) return std::nullopt;
            return end;
        }
        if (plan.scan) {
            for (std::size_t position = end; position > 0; --position)
                if (verify(query, plan, position - 1)) return position;
            return std::nullopt;
        }
        std::uint32_t best = kNone;
        for (const Chain& chain : plan.chains) {
            for (ChainHead at = chain.head; at.position > best; at = next_in_chain(chain, at)) {
                if (at.position <= end && verify(query, plan, at.position - 1)) {
                    best = at.position;
                    break;
                }
            }
        }
        if (plan.uses_keys)
            for (auto it = overflow_.rbegin(); it != overflow_.rend() && *it + 1 > best; ++it)
                if (*it < end && verify(query, plan, *it)) {
                    best = *it + 1;
                    break;
                }
        if (best == kNone) return std::nullopt;
        return best;
    }

    SequenceNumber batch_end_of(std::size_t position) const {
        while (!slots_[position].batch_end)
            ++position;
        return position + 1;
    }

    EventRecord record_at(std::size_t position) const {
        const FactSlot& slot = slots_[position];
        return EventRecord{position + 1, Timestamp(std::chrono::microseconds(slot.occurred_at_us)),
                           types_[slot.type_id].name, std::string(slot.payload, slot.payload_size)};
    }

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

std::size_t memory_backend_bytes(const Backend& backend) {
    if (auto* memory = dynamic_cast<const MemoryBackend*>(&backend)) return memory->memory_bytes();
    return 0;
}

}  // namespace factstr
