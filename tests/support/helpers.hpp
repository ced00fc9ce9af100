// Small helpers shared by the test suites.
#pragma once

#include <factstr/factstr.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace factstr {

// Printers, so that failed checks show values instead of {?}.
inline std::ostream& operator<<(std::ostream& out, const EventRecord& r) {
    return out << "#" << r.sequence_number << " " << r.event_type << " " << r.payload;
}
inline std::ostream& operator<<(std::ostream& out, const AppendResult& r) {
    return out << "{first " << r.first_sequence_number << ", last " << r.last_sequence_number
               << ", count " << r.committed_count << "}";
}
inline std::ostream& operator<<(std::ostream& out, const ConditionalAppendConflict& c) {
    out << "{conflict expected ";
    if (c.expected_context_version)
        out << *c.expected_context_version;
    else
        out << "none";
    out << ", actual ";
    if (c.actual_context_version)
        out << *c.actual_context_version;
    else
        out << "none";
    return out << "}";
}

}  // namespace factstr

namespace factstr::testing {

using Seqs = std::vector<SequenceNumber>;  // sequence numbers, ascending
using Ranges = std::vector<Seqs>;          // the sequence numbers of each delivered batch

inline NewEvent event(std::string type, std::string payload = "{}") {
    return NewEvent{std::move(type), std::move(payload)};
}

inline EventFilter types(std::vector<std::string> event_types) {
    return EventFilter{std::move(event_types), std::nullopt};
}

inline EventFilter predicates(std::vector<std::string> payload_predicates) {
    return EventFilter{std::nullopt, std::move(payload_predicates)};
}

inline EventQuery query_of(std::vector<EventFilter> filters,
                           std::optional<SequenceNumber> after = std::nullopt) {
    return EventQuery{std::move(filters), after};
}

inline std::vector<SequenceNumber> sequence_numbers(const std::vector<EventRecord>& records) {
    std::vector<SequenceNumber> out;
    for (const auto& r : records)
        out.push_back(r.sequence_number);
    return out;
}

// Collects what a stream handler receives, thread-safely, and lets a test wait for it.
class BatchRecorder {
  public:
    void record(const Batch& batch) {
        std::lock_guard lock(mutex_);
        batches_.push_back(batch);
        changed_.notify_all();
    }
    // Waits until `predicate(batches)` holds or the timeout passes; returns whether it held.
    bool wait_until(const std::function<bool(const std::vector<Batch>&)>& predicate,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return predicate(batches_); });
    }
    bool wait_for_batches(std::size_t count,
                          std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        return wait_until([count](const auto& b) { return b.size() >= count; }, timeout);
    }
    std::vector<Batch> batches() const {
        std::lock_guard lock(mutex_);
        return batches_;
    }
    std::vector<SequenceNumber> all_sequence_numbers() const {
        std::lock_guard lock(mutex_);
        std::vector<SequenceNumber> out;
        for (const auto& b : batches_)
            for (const auto& r : b)
                out.push_back(r.sequence_number);
        return out;
    }

  private:
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<Batch> batches_;
};

// Gives asynchronous delivery a moment to (wrongly) happen before asserting that it did not.
inline void settle() {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

// A handler that records every batch into `recorder` (shared, so that it outlives deliveries
// that are still running when a test ends).
inline StreamHandler record_into(std::shared_ptr<BatchRecorder> recorder) {
    return [recorder](const Batch& batch) { recorder->record(batch); };
}

// Polls `condition` until it holds or the timeout passes; returns whether it held.
inline bool wait_for(const std::function<bool()>& condition,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() >= deadline) return condition();
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

// The stored position of the durable cursor `name`, or none when the store has no cursor of
// that name.
inline std::optional<SequenceNumber> cursor_of(const Store& store, std::string_view name) {
    for (const DurableCursorInfo& info : store.durable_cursors())
        if (info.name == name) return info.position;
    return std::nullopt;
}

// The cursor position, counting "no cursor yet" as 0 (nothing handled).
inline SequenceNumber cursor_position(const Store& store, std::string_view name) {
    return cursor_of(store, name).value_or(0);
}

// Sequence numbers of each batch, batch by batch.
inline std::vector<std::vector<SequenceNumber>> batch_sequence_numbers(
    const std::vector<Batch>& batches) {
    std::vector<std::vector<SequenceNumber>> out;
    for (const Batch& b : batches)
        out.push_back(sequence_numbers(b));
    return out;
}

// The consecutive numbers first..last.
inline std::vector<SequenceNumber> range(SequenceNumber first, SequenceNumber last) {
    std::vector<SequenceNumber> out;
    for (SequenceNumber s = first; s <= last; ++s)
        out.push_back(s);
    return out;
}

// Every fact in the log, ascending.
inline std::vector<EventRecord> all_facts(const Store& store) {
    return store.query(EventQuery{}).event_records;
}

// A payload with an integer field, e.g. numbered("n", 3) == {"n":3}.
inline std::string numbered(const std::string& key, long long value) {
    return "{\"" + key + "\":" + std::to_string(value) + "}";
}

}  // namespace factstr::testing
