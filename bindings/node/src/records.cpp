#include "records.hpp"

#include <cstring>
#include <factstr/json.hpp>

namespace factstr_node {

EncodedRecords encode_records(std::span<const factstr::EventRecord> records) {
    EncodedRecords out;
    out.sequence_numbers.reserve(records.size());
    std::size_t size = 2;
    for (const auto& record : records)
        size += record.event_type.size() + record.payload.size() + 48;
    out.json.reserve(size);
    out.json += '[';
    bool first = true;
    for (const auto& record : records) {
        out.sequence_numbers.push_back(record.sequence_number);
        if (!first) out.json += ',';
        first = false;
        out.json += "[\"";
        factstr::json::append_rfc3339(out.json, record.occurred_at);
        out.json += "\",";
        factstr::json::append_quoted(out.json, record.event_type);
        out.json += ',';
        out.json += record.payload;  // compact, validated JSON
        out.json += ']';
    }
    out.json += ']';
    return out;
}

Napi::Value sequence_numbers_to_js(Napi::Env env, const std::vector<std::uint64_t>& numbers) {
    auto array = Napi::BigUint64Array::New(env, numbers.size());
    if (!numbers.empty())
        std::memcpy(array.Data(), numbers.data(), numbers.size() * sizeof(std::uint64_t));
    return array;
}

}  // namespace factstr_node
