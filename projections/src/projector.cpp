#include "projector.hpp"
#include "factstr/env.hpp"

#include <algorithm>

namespace factstr::projections::detail {

Projector::Projector(Store& store, const Projection& projection, std::string worker,
                     std::size_t page_facts)
    : store_(store),
      plan_(projection),
      worker_(std::move(worker)),
      page_facts_(page_facts),
      tables_(open_tables(store)) {}

void Projector::start(SequenceNumber checkpoint) {
    const bool fresh = checkpoint == 0 && !plan_.tables().empty() &&
                       !plan_.tables().front().transform &&
                       tables_->is_empty(plan_.tables().front(), false);
    plan_.reset_state_cache(fresh);
    {
        std::lock_guard lock(mutex_);
        persisted_ = position_ = checkpoint;
        phase_ = Phase::running;
        error_.reset();
    }
    last_write_ = factstr::Env::system().monotonic_now();
    std::weak_ptr<Projector> weak = shared_from_this();
    subscription_ = store_.stream_pages(checkpoint, plan_.union_query(), page_facts_,
                                        [weak](const BatchPage& page, Completion done) {
                                            if (auto self = weak.lock())
                                                self->on_page(page, std::move(done));
                                            else
                                                done.fail("the projector was stopped");
                                        });
}

void Projector::stop() {
    subscription_.unsubscribe();
    std::lock_guard apply(apply_mutex_);
    SequenceNumber from, to;
    bool running;
    {
        std::lock_guard lock(mutex_);
        running = phase_ == Phase::running;
        from = persisted_;
        to = position_;
    }
    if (running && to > from) {
        try {
            if (tables_->apply(plan_, PageDelta{},
                               Fence{from, to, worker_, plan_.fingerprint(), false}))
                set_position(to, true);
        } catch (const std::exception&) {
            // Only the saving of a skip is lost: those facts are read again after a restart.
        }
    }
    std::lock_guard lock(mutex_);
    if (phase_ == Phase::running) phase_ = Phase::stopped;
}

Projector::Phase Projector::phase() const {
    std::lock_guard lock(mutex_);
    return phase_;
}

SequenceNumber Projector::position() const {
    std::lock_guard lock(mutex_);
    return position_;
}

std::optional<std::string> Projector::error() const {
    std::lock_guard lock(mutex_);
    return error_;
}

void Projector::on_page(const BatchPage& page, Completion done) {
    std::lock_guard apply(apply_mutex_);
    try {
        const auto now = factstr::Env::system().monotonic_now();
        if (page.batches.empty()) {
            // Nothing to apply: the checkpoint is written now and then, so that a restart
            // does not re-read a long stretch of facts this projection ignores.
            if (now - last_write_ >= std::chrono::seconds(1)) write(PageDelta{}, page, now);
            set_position(page.scanned_through, false);
            done.succeed();
            return;
        }
        PageDelta delta = plan_.fold(page, [&](const std::vector<Cell>& key) {
            return tables_->load_row(plan_.tables().front(), key, false);
        });
        if (!write(delta, page, now)) {
            done.fail("the lease was lost");
            return;
        }
        done.succeed();
    } catch (const FoldFailure& failure) {
        plan_.reset_state_cache(false);
        const std::string message = failure.what();  // names the fact; status names the projection
        try {
            tables_->record_failure(plan_.name(), message, failure.position());
        } catch (const std::exception&) {
            // The failure stays visible in this worker's status.
        }
        fail(Phase::failed, message);
        done.fail(message);
    } catch (const std::exception& e) {
        plan_.reset_state_cache(false);
        fail(Phase::interrupted, "projection '" + plan_.name() + "': " + e.what());
        done.fail(e.what());
    }
}

bool Projector::write(const PageDelta& delta, const BatchPage& page,
                      std::chrono::steady_clock::time_point now) {
    Fence fence{persisted_value(), page.scanned_through, worker_, plan_.fingerprint(), false};
    if (!tables_->apply(plan_, delta, fence)) {
        plan_.reset_state_cache(false);
        fail(Phase::lost, "the lease was lost or the declaration was replaced");
        return false;
    }
    last_write_ = now;
    set_position(page.scanned_through, true);
    return true;
}

SequenceNumber Projector::persisted_value() {
    std::lock_guard lock(mutex_);
    return persisted_;
}

void Projector::set_position(SequenceNumber position, bool persisted) {
    std::lock_guard lock(mutex_);
    position_ = std::max(position_, position);
    if (persisted) persisted_ = position;
}

void Projector::fail(Phase phase, std::string message) {
    std::lock_guard lock(mutex_);
    phase_ = phase;
    error_ = std::move(message);
}

}  // namespace factstr::projections::detail
