// The memory rows' yardstick: a plain in-memory log with indexes, doing the same appends,
// queries and commands as the memory store in the same run — what an in-memory log with
// indexes costs at least, so that a memory row's ratio reads as the store's overhead over the
// minimal work (as the SQLite and PostgreSQL rows read against raw SQLite and raw libpq).
//
// Appending a fact (given, like the store, its event type and its payload as JSON text):
//   - the payload is parsed with simdjson's DOM parser, which validates the whole document
//     as the store's parse does (the store also refuses duplicate keys and compacts the
//     text; this does neither: the bench's payloads are compact and have no duplicates);
//   - its bytes are copied into 1 MiB arena blocks, and a record (time, type, where the
//     payload is, its size) is pushed onto a std::vector; the position is the index there;
//   - the position is pushed onto a std::vector in a std::unordered_map keyed by the event
//     type, and in one keyed by each top-level scalar of the payload (key, a type tag and
//     the value: a string's bytes, a number's 8 bytes); objects and arrays are not indexed,
//     as in the store.
// One clock reading per append call (a batch shares it, as the store stamps a batch). No
// lock, no durable cursor, no stream notification: one thread, nothing else to serve.
//
// Reading a context (one event type and a one-key payload predicate, as W3 and W5 ask): the
// predicate's JSON text is parsed with simdjson, the positions under its key/value are
// walked and those of the event type copied out as EventRecords (what Store::query returns).
// The conditional append finds the context's newest match again (walking those positions
// back to the first of the type), compares it with the version read, and appends. The
// broad query copies out every record under the event type.
//
// The timed loops receive their input as the store's do: W1 and W2 precomputed payload
// texts; W3 and W5 format the predicate and payload texts inside the loop, as the store's
// loops do. They are timed the same way too (time_each for W3 and W5).
#include <fmt/format.h>
#include <simdjson.h>

#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "raw_engines.hpp"

namespace factstr::bench {
namespace {

using Position = std::uint32_t;  // index into the record vector (logs here stay below 4G)

// std::hash<std::string> made transparent (a lookup by string_view allocates nothing). Not
// noexcept on purpose: libstdc++ then keeps each node's hash, as it does for
// std::hash<std::string>.
struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const {
        return std::hash<std::string_view>{}(text);
    }
};
using PositionIndex =
    std::unordered_map<std::string, std::vector<Position>, StringHash, std::equal_to<>>;

struct PlainRecord {
    std::int64_t occurred_at_us;
    const std::string* event_type;  // the key of the type's index entry (nodes do not move)
    const char* payload;
    std::uint32_t payload_size;
};

// A one-type, one-predicate context as read by a command: its facts and its version.
struct PlainContext {
    const std::string* event_type = nullptr;           // null: no fact has the type
    const std::vector<Position>* positions = nullptr;  // null: no fact has the key/value
    std::vector<EventRecord> records;
    std::optional<SequenceNumber> version;
};

class PlainLog {
  public:
    static std::int64_t now_us() {
        return std::chrono::duration_cast<std::chrono::microseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }

    void append(std::string_view event_type, std::string_view payload, std::int64_t now_us) {
        const Position position = static_cast<Position>(records_.size());
        simdjson::dom::element root;
        if (auto error = parser_.parse(payload.data(), payload.size()).get(root))
            throw std::runtime_error(std::string("plain log: payload is not valid JSON: ") +
                                     simdjson::error_message(error));
        auto& [type, by_type] = entry(types_, event_type);
        by_type.push_back(position);
        records_.push_back(
            PlainRecord{now_us, &type, copy(payload), static_cast<std::uint32_t>(payload.size())});
        simdjson::dom::object object;
        if (root.get_object().get(object) != simdjson::SUCCESS) return;
        for (auto field : object)
            if (index_key(field.key, field.value)) entry(keys_, key_).second.push_back(position);
    }

    // The facts of `event_type` whose payload has the key/value of the one-key object
    // `predicate`, and the newest one's sequence number.
    PlainContext context(std::string_view event_type, std::string_view predicate) {
        PlainContext context;
        const auto type = types_.find(event_type);
        if (type != types_.end()) context.event_type = &type->first;
        simdjson::dom::element root;
        simdjson::dom::object object;
        if (parser_.parse(predicate.data(), predicate.size()).get(root) ||
            root.get_object().get(object))
            throw std::runtime_error("plain log: the predicate is not a JSON object");
        for (auto field : object) {
            if (!index_key(field.key, field.value)) continue;
            const auto key = keys_.find(key_);
            if (key != keys_.end()) context.positions = &key->second;
        }
        if (!context.event_type || !context.positions) return context;
        for (const Position position : *context.positions)
            if (records_[position].event_type == context.event_type)
                context.records.push_back(record(position));
        if (!context.records.empty()) context.version = context.records.back().sequence_number;
        return context;
    }

    // The context's newest match now (the check of a conditional append).
    std::optional<SequenceNumber> newest_match(const PlainContext& context) const {
        if (!context.event_type || !context.positions) return std::nullopt;
        for (auto it = context.positions->rbegin(); it != context.positions->rend(); ++it)
            if (records_[*it].event_type == context.event_type) return SequenceNumber{*it} + 1;
        return std::nullopt;
    }

    // Every record of `event_type`, in order.
    std::vector<EventRecord> by_type(std::string_view event_type) const {
        std::vector<EventRecord> out;
        const auto type = types_.find(event_type);
        if (type == types_.end()) return out;
        out.reserve(type->second.size());
        for (const Position position : type->second)
            out.push_back(record(position));
        return out;
    }

  private:
    static constexpr std::size_t kBlockBytes = std::size_t{1} << 20;

    EventRecord record(Position position) const {
        const PlainRecord& r = records_[position];
        return EventRecord{SequenceNumber{position} + 1,
                           Timestamp(std::chrono::microseconds(r.occurred_at_us)), *r.event_type,
                           std::string(r.payload, r.payload_size)};
    }

    static PositionIndex::value_type& entry(PositionIndex& index, std::string_view key) {
        auto it = index.find(key);
        if (it == index.end()) it = index.emplace(std::string(key), std::vector<Position>{}).first;
        return *it;
    }

    // The index key of a top-level member into key_: false for objects and arrays.
    bool index_key(std::string_view key, simdjson::dom::element value) {
        using simdjson::dom::element_type;
        key_.assign(key);
        key_.push_back('\0');
        auto append_bytes = [&](auto number) {
            key_.append(reinterpret_cast<const char*>(&number), sizeof number);
        };
        std::string_view text;
        std::int64_t integer = 0;
        std::uint64_t unsigned_integer = 0;
        double real = 0;
        bool boolean = false;
        switch (value.type()) {
            case element_type::STRING:
                if (value.get_string().get(text)) return false;
                key_.push_back('s');
                key_.append(text);
                return true;
            case element_type::INT64:
                if (value.get_int64().get(integer)) return false;
                key_.push_back('i');
                append_bytes(integer);
                return true;
            case element_type::UINT64:
                if (value.get_uint64().get(unsigned_integer)) return false;
                key_.push_back('u');
                append_bytes(unsigned_integer);
                return true;
            case element_type::DOUBLE:
                if (value.get_double().get(real)) return false;
                key_.push_back('d');
                append_bytes(real);
                return true;
            case element_type::BOOL:
                if (value.get_bool().get(boolean)) return false;
                key_.push_back(boolean ? 't' : 'f');
                return true;
            case element_type::NULL_VALUE:
                key_.push_back('n');
                return true;
            default:
                return false;
        }
    }

    const char* copy(std::string_view bytes) {
        if (blocks_.empty() || bytes.size() > block_capacity_ - block_used_) {
            block_capacity_ = std::max(kBlockBytes, bytes.size());
            blocks_.push_back(std::make_unique_for_overwrite<char[]>(block_capacity_));
            block_used_ = 0;
        }
        char* at = blocks_.back().get() + block_used_;
        std::memcpy(at, bytes.data(), bytes.size());
        block_used_ += bytes.size();
        return at;
    }

    std::vector<std::unique_ptr<char[]>> blocks_;
    std::size_t block_capacity_ = 0, block_used_ = 0;
    std::vector<PlainRecord> records_;
    PositionIndex types_, keys_;
    simdjson::dom::parser parser_;
    std::string key_;  // the index key being built
};

}  // namespace

double raw_memory_appends(const std::vector<std::string>& payloads, std::size_t facts,
                          std::size_t per_append) {
    PlainLog log;
    std::int64_t now = 0;
    const auto start = Clock::now();
    for (std::size_t i = 0; i < facts; ++i) {
        if (i % per_append == 0) now = PlainLog::now_us();
        log.append("deposited", payloads[i % payloads.size()], now);
    }
    return facts / seconds_since(start);
}

RawMemoryLogRates raw_memory_command_log(std::size_t size, std::size_t keys, std::size_t narrow_ops,
                                         std::size_t command_ops) {
    RawMemoryLogRates rates;
    if (narrow_ops == 0 && command_ops == 0) return rates;
    PlainLog log;
    {
        // As fill(store, size, keys): the same payloads, in batches of 1000.
        std::mt19937_64 random(3);
        std::int64_t now = 0;
        for (std::size_t i = 0; i < size; ++i) {
            if (i % 1000 == 0) now = PlainLog::now_us();
            log.append("deposited", payload(random, keys), now);
        }
    }
    if (narrow_ops > 0) {
        std::mt19937_64 random(5);
        std::size_t returned = 0;
        const Timed timed = time_each(narrow_ops, [&] {
            const std::string predicate = fmt::format(R"({{"accountId":"a{}"}})", random() % keys);
            returned += log.context("deposited", predicate).records.size();
        });
        if (returned == 0) throw std::runtime_error("plain log: the narrow queries found nothing");
        rates.narrow_queries = narrow_ops / timed.seconds;

        std::size_t facts = 0, runs = 0;
        const auto start = Clock::now();
        do {
            const std::vector<EventRecord> records = log.by_type("deposited");
            if (records.size() != size)
                throw std::runtime_error("plain log: the broad query returned a wrong count");
            facts += records.size();
            ++runs;
        } while (runs < 10 && seconds_since(start) < 1.0);
        rates.broad_query = facts / seconds_since(start);
    }
    if (command_ops > 0) {
        std::mt19937_64 random(4);
        std::size_t conflicts = 0;
        const Timed timed = time_each(command_ops, [&] {
            const std::size_t account = random() % keys;
            const std::string predicate = fmt::format(R"({{"accountId":"a{}"}})", account);
            const PlainContext context = log.context("deposited", predicate);
            const std::string body =
                fmt::format(R"({{"accountId":"a{}","amount":1,"currency":"EUR"}})", account);
            if (log.newest_match(context) == context.version)
                log.append("withdrawn", body, PlainLog::now_us());
            else
                ++conflicts;
        });
        if (conflicts) throw std::runtime_error("plain log: a command conflicted");
        rates.commands = command_ops / timed.seconds;
    }
    return rates;
}

}  // namespace factstr::bench
