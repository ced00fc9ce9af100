// One projection held by this worker (DESIGN.md §5): a page stream from its checkpoint, each
// page folded by the plan and written with the checkpoint in one transaction of the derived
// tables. Made and stopped by the engine's lease round (engine.cpp).
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "factstr/projections.hpp"
#include "plan.hpp"
#include "tables.hpp"

namespace factstr::projections::detail {

class Projector : public std::enable_shared_from_this<Projector> {
  public:
    // running: applying pages; failed: a fact could not be applied (kept until a rebuild);
    // lost: the lease or the declaration went elsewhere; interrupted: a passing failure of
    // the database; stopped: by stop().
    enum class Phase { running, failed, lost, interrupted, stopped };

    // Opens its own connection to the derived tables.
    Projector(Store& store, const Projection& projection, std::string worker,
              std::size_t page_facts);

    // Starts the page stream after `checkpoint`. Called once, on a shared_ptr.
    void start(SequenceNumber checkpoint);

    // Stops the stream and waits for a page being written. A checkpoint moved past facts
    // this projection ignores is written now, so a restart does not read them again.
    void stop();

    Phase phase() const;
    // How far it has applied (or skipped) the log.
    SequenceNumber position() const;
    std::optional<std::string> error() const;
    const Plan& plan() const { return plan_; }

  private:
    void on_page(const BatchPage& page, Completion done);
    // Writes a page's delta with its checkpoint; false (and the phase lost) when the fence
    // no longer holds.
    bool write(const PageDelta& delta, const BatchPage& page,
               std::chrono::steady_clock::time_point now);
    SequenceNumber persisted_value();
    void set_position(SequenceNumber position, bool persisted);
    void fail(Phase phase, std::string message);

    Store& store_;
    Plan plan_;
    const std::string worker_;
    const std::size_t page_facts_;
    std::unique_ptr<DerivedTables> tables_;
    Subscription subscription_;
    std::chrono::steady_clock::time_point last_write_;

    std::mutex apply_mutex_;
    mutable std::mutex mutex_;
    Phase phase_ = Phase::stopped;
    SequenceNumber persisted_ = 0;
    SequenceNumber position_ = 0;
    std::optional<std::string> error_;
};

}  // namespace factstr::projections::detail
