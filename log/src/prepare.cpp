#include <string>

#include "factstr/errors.hpp"
#include "factstr/internal/backend.hpp"

namespace factstr {

std::vector<PreparedEvent> prepare_events(std::vector<NewEvent>&& events) {
    if (events.empty())
        throw InvalidInput(ErrorCode::empty_append,
                           "cannot append an empty batch: give at least one event");
    std::vector<PreparedEvent> prepared;
    prepared.reserve(events.size());
    for (std::size_t i = 0; i < events.size(); ++i) {
        NewEvent& event = events[i];
        if (event.event_type.empty())
            throw InvalidInput(
                ErrorCode::invalid_argument,
                "event " + std::to_string(i) + " of the batch has an empty event_type");
        try {
            json::PreparedPayload payload =
                json::prepare_payload(std::move(event.payload), "payload");
            prepared.push_back(
                PreparedEvent{std::move(event.event_type), std::move(payload), std::nullopt});
        } catch (const InvalidInput& e) {
            throw InvalidInput(e.code(), "event " + std::to_string(i) +
                                             " of the batch (event_type '" + event.event_type +
                                             "'): " + e.what());
        }
    }
    return prepared;
}

}  // namespace factstr
