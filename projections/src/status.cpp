// Projection status (state, lag, error) and the declarations recorded in a store.
#include "status.hpp"
#include "factstr/env.hpp"

#include <algorithm>

#include "plan.hpp"

namespace factstr::projections {
namespace detail {
namespace {

// The first fact after `checkpoint` that the projection looks at, if any.
std::optional<EventRecord> first_pending(Backend& backend, const EventQuery& query,
                                         SequenceNumber checkpoint, SequenceNumber head) {
    const CompiledQuery filter(query);
    SequenceNumber position = checkpoint;
    while (position < head) {
        BatchPage page = backend.read_batches(position, filter, 1);
        if (!page.batches.empty()) return page.batches.front().records.front();
        if (page.scanned_through <= position) break;
        position = page.scanned_through;
    }
    return std::nullopt;
}

}  // namespace

ProjectionStatus status_of(Backend& backend, const MetaRow& meta, SequenceNumber head,
                           SequenceNumber checkpoint) {
    ProjectionStatus status;
    status.name = meta.name;
    status.fingerprint = meta.fingerprint;
    status.checkpoint = checkpoint;
    status.head = head;
    status.error = meta.error;
    status.error_position = meta.error_position;
    status.owner = meta.owner;
    status.rebuild_checkpoint = meta.rebuild_checkpoint;
    try {
        const Plan plan(parse_projection(meta.declaration));
        if (auto pending = first_pending(backend, plan.union_query(), checkpoint, head)) {
            status.lag_facts = head - checkpoint;
            status.lag_time = std::max(std::chrono::milliseconds(0),
                                       std::chrono::duration_cast<std::chrono::milliseconds>(
                                           factstr::Env::system().now() - pending->occurred_at));
        }
    } catch (const Error&) {
        status.lag_facts = head > checkpoint ? head - checkpoint : 0;  // an unreadable declaration
    }
    if (meta.error)
        status.state = ProjectionStatus::State::failed;
    else if (meta.rebuild_fingerprint)
        status.state = ProjectionStatus::State::rebuilding;
    else if (meta.owner)
        status.state = status.lag_facts == 0 ? ProjectionStatus::State::caught_up
                                             : ProjectionStatus::State::running;
    else
        status.state = ProjectionStatus::State::stopped;
    return status;
}

}  // namespace detail

using detail::MetaRow;
using detail::status_of;

std::vector<ProjectionStatus> status(Store& store) {
    auto tables = detail::open_tables(store);
    const SequenceNumber head = store.head();
    std::vector<ProjectionStatus> result;
    for (const MetaRow& row : tables->meta())
        result.push_back(status_of(store.backend(), row, head, row.checkpoint));
    return result;
}

std::vector<std::pair<std::string, std::string>> declarations(Store& store) {
    auto tables = detail::open_tables(store);
    std::vector<std::pair<std::string, std::string>> result;
    for (const MetaRow& row : tables->meta())
        result.emplace_back(row.name, row.declaration);
    return result;
}

const char* to_string(ProjectionStatus::State state) noexcept {
    switch (state) {
        case ProjectionStatus::State::running:
            return "running";
        case ProjectionStatus::State::caught_up:
            return "caught_up";
        case ProjectionStatus::State::failed:
            return "failed";
        case ProjectionStatus::State::rebuilding:
            return "rebuilding";
        case ProjectionStatus::State::stopped:
            return "stopped";
    }
    return "unknown";
}

}  // namespace factstr::projections
