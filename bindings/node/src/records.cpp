#include "records.hpp"

#include <cstring>
#include <factstr/json.hpp>

namespace factstr_node {
namespace {

std::size_t encoded_size(std::span<const factstr::EventRecord> records) {
    std::size_t size = 0;
    for (const auto& record : records)
        size += record.event_type.size() + record.payload.size() + 48;
    return size;
}

void append_record(EncodedRecords& out, const factstr::EventRecord& record) {
    out.sequence_numbers.push_back(record.sequence_number);
    if (out.json.size() > 1) out.json += ',';
    out.json += "[\"";
    factstr::json::append_rfc3339(out.json, record.occurred_at);
    out.json += "\",";
    factstr::json::append_quoted(out.json, record.event_type);
    out.json += ',';
    out.json += record.payload;  // compact, validated JSON
    out.json += ']';
}

}  // namespace

EncodedRecords encode_records(std::span<const factstr::EventRecord> records) {
    EncodedRecords out;
    out.sequence_numbers.reserve(records.size());
    out.json.reserve(encoded_size(records) + 2);
    out.json += '[';
    for (const auto& record : records)
        append_record(out, record);
    out.json += ']';
    return out;
}

EncodedRun encode_run(const std::vector<factstr::CommittedBatch>& run) {
    EncodedRun out;
    std::size_t count = 0, size = 2;
    for (const auto& batch : run) {
        count += batch.records.size();
        size += encoded_size(batch.records);
    }
    out.records.sequence_numbers.reserve(count);
    out.records.json.reserve(size);
    out.records.json += '[';
    for (const auto& batch : run) {
        for (const auto& record : batch.records)
            append_record(out.records, record);
        out.sizes.push_back(static_cast<std::uint32_t>(batch.records.size()));
        out.ends.push_back(batch.last_sequence_number);
    }
    out.records.json += ']';
    return out;
}

Napi::Value sequence_numbers_to_js(Napi::Env env, const std::vector<std::uint64_t>& numbers) {
    auto array = Napi::BigUint64Array::New(env, numbers.size());
    if (!numbers.empty())
        std::memcpy(array.Data(), numbers.data(), numbers.size() * sizeof(std::uint64_t));
    return array;
}

}  // namespace factstr_node
