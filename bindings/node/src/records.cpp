#include "records.hpp"

#include <cstring>
#include <factstr/json.hpp>
#include <string_view>
#include <unordered_map>

namespace factstr_node {
namespace {

// Builds the three tables of EncodedRecords over the records given to add(), in order: each
// payload goes straight into the text; the times and types, few and short, wait in tables of
// their own until finish() appends them.
class Encoder {
  public:
    Encoder(std::size_t count, std::size_t payload_bytes) {
        out_.sequence_numbers.reserve(count);
        out_.labels.reserve(count * 2);
        out_.json.reserve(payload_bytes + 64);
        out_.json += "[[";
    }

    void add(const factstr::EventRecord& record) {
        out_.sequence_numbers.push_back(record.sequence_number);
        // The facts of one append share their time, and come one after another.
        if (times_ == 0 || record.occurred_at != last_time_) {
            if (times_ > 0) times_json_ += ',';
            times_json_ += '"';
            factstr::json::append_rfc3339(times_json_, record.occurred_at);
            times_json_ += '"';
            last_time_ = record.occurred_at;
            ++times_;
        }
        out_.labels.push_back(times_ - 1);
        out_.labels.push_back(type_label(record.event_type));
        if (out_.sequence_numbers.size() > 1) out_.json += ',';
        out_.json += record.payload;  // compact, validated JSON
    }

    EncodedRecords finish() && {
        out_.json += "],[";
        out_.json += times_json_;
        out_.json += "],[";
        for (std::size_t i = 0; i < types_.size(); ++i) {
            if (i > 0) out_.json += ',';
            factstr::json::append_quoted(out_.json, types_[i]);
        }
        out_.json += "]]";
        return std::move(out_);
    }

  private:
    std::uint32_t type_label(std::string_view type) {
        if (!types_.empty() && types_[last_type_] == type) return last_type_;
        if (auto found = type_labels_.find(type); found != type_labels_.end())
            return last_type_ = found->second;
        last_type_ = static_cast<std::uint32_t>(types_.size());
        types_.push_back(type);
        type_labels_.emplace(type, last_type_);
        return last_type_;
    }

    EncodedRecords out_;
    std::string times_json_;
    // Views into the records, which outlive the encoder.
    std::vector<std::string_view> types_;
    std::unordered_map<std::string_view, std::uint32_t> type_labels_;
    std::uint32_t last_type_ = 0;
    std::uint32_t times_ = 0;
    factstr::Timestamp last_time_{};
};

std::size_t payload_bytes(std::span<const factstr::EventRecord> records) {
    std::size_t size = 0;
    for (const auto& record : records)
        size += record.payload.size() + 1;
    return size;
}

}  // namespace

EncodedRecords encode_records(std::span<const factstr::EventRecord> records) {
    Encoder encoder(records.size(), payload_bytes(records));
    for (const auto& record : records)
        encoder.add(record);
    return std::move(encoder).finish();
}

EncodedRun encode_run(const std::vector<factstr::CommittedBatch>& run) {
    std::size_t count = 0, bytes = 0;
    for (const auto& batch : run) {
        count += batch.records.size();
        bytes += payload_bytes(batch.records);
    }
    Encoder encoder(count, bytes);
    EncodedRun out;
    out.sizes.reserve(run.size());
    out.ends.reserve(run.size());
    for (const auto& batch : run) {
        for (const auto& record : batch.records)
            encoder.add(record);
        out.sizes.push_back(static_cast<std::uint32_t>(batch.records.size()));
        out.ends.push_back(batch.last_sequence_number);
    }
    out.records = std::move(encoder).finish();
    return out;
}

Napi::Value text_to_js(Napi::Env env, const std::string& text) {
    // ASCII (the common case: JSON escapes nothing else by necessity) is one-byte text to V8,
    // copied as it is; anything else is decoded from UTF-8.
    const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
    std::size_t i = 0;
    std::uint64_t high = 0;
    for (; i + 8 <= text.size(); i += 8) {
        std::uint64_t word;
        std::memcpy(&word, bytes + i, 8);
        high |= word;
    }
    for (; i < text.size(); ++i)
        high |= bytes[i];
    napi_value value = nullptr;
    const napi_status status =
        (high & 0x8080808080808080ULL) == 0
            ? napi_create_string_latin1(env, text.data(), text.size(), &value)
            : napi_create_string_utf8(env, text.data(), text.size(), &value);
    NAPI_THROW_IF_FAILED(env, status, Napi::Value());
    return Napi::Value(env, value);
}

}  // namespace factstr_node
