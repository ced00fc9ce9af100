// Small helpers shared by the test suites.
#pragma once

#include <factstr/factstr.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace factstr::testing {

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
    for (const auto& r : records) out.push_back(r.sequence_number);
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
            for (const auto& r : b) out.push_back(r.sequence_number);
        return out;
    }

private:
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<Batch> batches_;
};

// Gives asynchronous delivery a moment to (wrongly) happen before asserting that it did not.
inline void settle() { std::this_thread::sleep_for(std::chrono::milliseconds(100)); }

}  // namespace factstr::testing
