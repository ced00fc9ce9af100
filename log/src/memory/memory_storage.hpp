// The memory engine's storage: append-only chunks that never move, a byte arena for
// payloads (each followed by json::kParsePadding readable bytes), and the open-addressing
// table of key chains. See memory_backend.cpp for the layout per fact.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "factstr/json.hpp"

namespace factstr::memory {

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

}  // namespace factstr::memory
