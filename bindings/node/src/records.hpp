// Event records on their way to JavaScript. A batch is encoded off the JavaScript thread into
// the sequence numbers (a BigUint64Array there), two labels per record (a Uint32Array: the
// index of its occurred_at and of its event_type in the tables below), and one JSON text,
// [[<payload>,...],[<occurred_at>,...],[<event_type>,...]], that index.js turns into
// EventRecord objects with a single JSON.parse: far fewer Node-API calls than building each
// object natively, no array per record, and one string for the facts of a batch (they share
// their occurred_at) and for each event type.
#pragma once

#include <napi.h>

#include <cstdint>
#include <cstring>
#include <factstr/types.hpp>
#include <span>
#include <string>
#include <vector>

namespace factstr_node {

struct EncodedRecords {
    std::vector<std::uint64_t> sequence_numbers;
    std::vector<std::uint32_t> labels;  // per record: occurred_at index, event_type index
    std::string json;
};

EncodedRecords encode_records(std::span<const factstr::EventRecord> records);

// A run of committed batches for one stream delivery: every record in one EncodedRecords,
// with each batch's record count and last sequence number (its end, which a filtered
// stream's last record need not be).
struct EncodedRun {
    EncodedRecords records;
    std::vector<std::uint32_t> sizes;
    std::vector<factstr::SequenceNumber> ends;
};

EncodedRun encode_run(const std::vector<factstr::CommittedBatch>& run);

// A typed array holding a copy of `values`: a BigUint64Array for std::uint64_t, a
// Uint32Array for std::uint32_t.
template <class T>
Napi::Value typed_array_of(Napi::Env env, const std::vector<T>& values) {
    auto array = Napi::TypedArrayOf<T>::New(env, values.size());
    if (!values.empty()) std::memcpy(array.Data(), values.data(), values.size() * sizeof(T));
    return array;
}

// A JavaScript string of UTF-8 text (the JSON of EncodedRecords).
Napi::Value text_to_js(Napi::Env env, const std::string& text);

}  // namespace factstr_node
