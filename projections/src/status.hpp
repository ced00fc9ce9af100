// What the store says about a projection: its state, checkpoint, lag and error, read from its
// meta row and the log (status_of), for Engine::status and projections::status.
#pragma once

#include "factstr/internal/backend.hpp"
#include "factstr/projections.hpp"
#include "tables.hpp"

namespace factstr::projections::detail {

// The status of the projection `meta` describes, as applied through `checkpoint` (this
// worker's position may be ahead of the stored one) with the log at `head`. Costs a parse of
// the declaration and a read of the first fact it has not applied.
ProjectionStatus status_of(Backend& backend, const MetaRow& meta, SequenceNumber head,
                           SequenceNumber checkpoint);

}  // namespace factstr::projections::detail
