#include "stream_hub.hpp"

#include <boost/asio/post.hpp>

namespace factstr::detail {
namespace {
// Facts read from the backend per page; a page never splits a batch.
constexpr std::size_t kPageFacts = 4096;

// A failure that goes away by itself: the server could not be reached for the moment.
bool transient(const std::exception& e) {
    const auto* error = dynamic_cast<const Error*>(&e);
    return error && error->code() == ErrorCode::connection_failure;
}
}  // namespace

SubscriptionState::SubscriptionState(std::shared_ptr<StreamHub> hub_, CompiledQuery filter_,
                                     StreamHandler handler_,
                                     std::optional<std::string> durable_name_)
    : hub(std::move(hub_)),
      strand(boost::asio::make_strand(hub->io())),
      filter(std::move(filter_)),
      handler(std::move(handler_)),
      durable_name(std::move(durable_name_)) {}

void SubscriptionState::schedule_pump() {
    if (pump_scheduled.exchange(true)) return;
    hub->post(*this, [self = shared_from_this()] { self->pump(); });
}

void SubscriptionState::pump() {
    pump_scheduled.store(false);
    while (!hub->closed() && active.load() && !in_flight) {
        if (pending.empty()) {
            if (position >= target.load()) {
                advance_to(position);  // completes a registration whose replay is empty
                return;
            }
            BatchPage page;
            try {
                page = hub->backend().read_batches(position, filter,
                                                   page_handler ? page_facts : kPageFacts);
            } catch (const std::exception& e) {
                if (transient(e)) {
                    retry_later();
                    return;
                }
                stop_with_failure(std::string("reading the log failed: ") + e.what());
                return;
            }
            retry_delay = std::chrono::milliseconds(0);
            if (page.batches.empty() && page.scanned_through <= position) {
                // The signal ran ahead of what this reader sees yet: look again shortly
                // (for every kind of stream alike), neither spinning nor waiting for the
                // next commit.
                retry_later();
                return;
            }
            if (page_handler) {
                in_flight = true;
                pending_scanned_through = page.scanned_through;
                const SequenceNumber page_end = page.scanned_through;
                page_handler(page, Completion(shared_from_this(), page_end));
                return;  // finish_delivery continues the loop
            }
            pending.assign(std::make_move_iterator(page.batches.begin()),
                           std::make_move_iterator(page.batches.end()));
            pending_scanned_through = page.scanned_through;
            if (pending.empty()) {
                advance_to(pending_scanned_through);
                if (position < pending_scanned_through) return;  // stopped
                continue;
            }
        }
        in_flight = true;
        if (handler.run_fn()) {
            // The whole run in one hand-over; its completion covers all of it.
            run.assign(std::make_move_iterator(pending.begin()),
                       std::make_move_iterator(pending.end()));
            pending.clear();
            handler.run_fn()(run, Completion(shared_from_this(), run.back().last_sequence_number));
            return;  // finish_delivery or finish_run continues the loop
        }
        const CommittedBatch& batch = pending.front();
        handler.fn()(batch.records, Completion(shared_from_this(), batch.last_sequence_number));
        return;  // finish_delivery continues the loop
    }
}

void SubscriptionState::finish_run(SequenceNumber handled_through, SequenceNumber failed_batch_end,
                                   const std::string& reason) {
    in_flight = false;
    run.clear();
    if (failed_batch_end != 0 && stops_on_failure()) {
        advance_to(handled_through);  // the run's batches before the failed one count
        {
            std::lock_guard lock(failure_mutex);
            if (failure) return;  // writing the cursor failed and stopped the stream already
        }
        stop_with_failure("handler failed for the batch ending at sequence number " +
                          std::to_string(failed_batch_end) + ": " + reason);
        return;
    }
    // A live stream moves on past a failed batch; a run cut short is read again from where
    // it stopped.
    advance_to(std::max(handled_through, failed_batch_end));
    if (!active.load()) {
        persist_cursor_quietly();
        return;
    }
    if (hub->closed()) return;
    pump();
}

void SubscriptionState::finish_delivery(SequenceNumber batch_end, bool success,
                                        const std::string& reason) {
    in_flight = false;
    run.clear();
    if (!pending.empty() && pending.front().last_sequence_number == batch_end) pending.pop_front();
    if (!success && stops_on_failure()) {
        // Batches before this one succeeded: keep their progress.
        stop_with_failure("handler failed for the batch ending at sequence number " +
                          std::to_string(batch_end) + ": " + reason);
        return;
    }
    // A live stream moves on after a failure: the append stays committed, and only this
    // stream's handler saw the failure.
    advance_to(pending.empty() ? std::max(batch_end, pending_scanned_through) : batch_end);
    if (!active.load()) {
        // Unsubscribed while this batch was in flight: its success still counts.
        persist_cursor_quietly();
        return;
    }
    if (hub->closed()) return;
    pump();
}

void SubscriptionState::advance_to(SequenceNumber to) {
    if (to > position) {
        position = to;
        visible_position.store(to);
    }
    // The cursor is written once per page of batches (and whenever the stream is idle or
    // stops), not once per batch: a crash can only make it lag, never run ahead.
    if (pending.empty() && !persist_cursor()) return;
    if (registration_done && position >= replay_until) {
        auto done = std::move(registration_done);
        registration_done = nullptr;
        done(Subscription(shared_from_this()), nullptr);
    }
}

bool SubscriptionState::persist_cursor() {
    if (!durable_name || position <= saved_position) return true;
    try {
        hub->backend().save_cursor(*durable_name, position, filter.json());
        saved_position = position;
        return true;
    } catch (const std::exception& e) {
        if (transient(e)) {
            // The cursor lags (which only causes a replay); it is written on the retry.
            retry_later();
            return true;
        }
        stop_with_failure(std::string("saving the cursor failed: ") + e.what());
        return false;
    }
}

void SubscriptionState::stop_with_failure(const std::string& reason) {
    persist_cursor_quietly();
    std::string message = durable_name   ? "durable stream '" + *durable_name + "': " + reason
                          : page_handler ? "page stream: " + reason
                                         : "stream: " + reason;
    {
        std::lock_guard lock(failure_mutex);
        failure = message;
    }
    active.store(false);
    pending.clear();
    hub->remove(*this);
    if (registration_done) {
        auto done = std::move(registration_done);
        registration_done = nullptr;
        done(Subscription(),
             std::make_exception_ptr(StreamError(ErrorCode::handler_failed, message)));
    }
}

void SubscriptionState::retry_later() {
    using std::chrono::milliseconds;
    retry_delay =
        retry_delay.count() == 0 ? milliseconds(20) : std::min(retry_delay * 2, milliseconds(1000));
    if (!retry_timer) retry_timer.emplace(strand);
    retry_timer->expires_after(retry_delay);
    // A weak reference: a pending retry does not keep an unsubscribed stream alive.
    retry_timer->async_wait([weak = weak_from_this()](const boost::system::error_code& error) {
        if (error) return;
        if (auto self = weak.lock()) self->schedule_pump();
    });
}

void SubscriptionState::persist_cursor_quietly() {
    if (!durable_name || position <= saved_position) return;
    try {
        hub->backend().save_cursor(*durable_name, position, filter.json());
        saved_position = position;
    } catch (const std::exception&) {
        // The stream is stopping anyway; the cursor lags, which only causes a replay.
    }
}

StreamHub::StreamHub(Backend& backend, unsigned threads)
    : backend_(backend), thread_count_(threads == 0 ? 1 : threads) {}

StreamHub::~StreamHub() {
    shutdown();
}

void StreamHub::start_threads_locked() {
    if (!threads_.empty()) return;
    work_.emplace(io_.get_executor());
    for (unsigned i = 0; i < thread_count_; ++i)
        threads_.push_back(backend_.env().start_thread("factstr-stream", [this] { io_.run(); }));
    if (backend_.external_poll_interval().count() > 0) {
        poll_timer_.emplace(io_);
        schedule_poll();
    }
}

void StreamHub::schedule_poll() {
    poll_timer_->expires_after(backend_.external_poll_interval());
    poll_timer_->async_wait([this](const boost::system::error_code& error) {
        if (error || closed_) return;
        if (subscription_count_.load() > 0) {
            try {
                if (auto head = backend_.poll_external_commits()) committed(*head);
            } catch (const std::exception&) {
                // The next poll tries again; the log stays the truth.
            }
        }
        schedule_poll();
    });
}

std::shared_ptr<SubscriptionState> StreamHub::add(CompiledQuery filter, StreamHandler handler,
                                                  std::optional<std::string> durable_name,
                                                  std::optional<SequenceNumber> start,
                                                  Store::RegistrationDone done,
                                                  Store::PageHandler page_handler,
                                                  std::size_t page_facts) {
    auto state = std::make_shared<SubscriptionState>(shared_from_this(), std::move(filter),
                                                     std::move(handler), durable_name);
    state->page_handler = std::move(page_handler);
    state->page_facts = page_facts == 0 ? kPageFacts : page_facts;
    std::lock_guard lock(mutex_);
    if (closed_) throw StoreError(ErrorCode::closed, "the store is closed");
    if (durable_name) {
        if (active_durable_names_.count(*durable_name))
            throw StreamError(ErrorCode::stream_busy,
                              "durable stream '" + *durable_name +
                                  "' is already active in this store; unsubscribe it first");
        active_durable_names_.insert(*durable_name);
    }
    start_threads_locked();
    subscriptions_.push_back(state);
    subscription_count_.fetch_add(1);
    // Read after the subscription is visible to committed(): a commit either is in this head
    // or raises the target afterwards.
    const SequenceNumber head = backend_.head();
    state->position = start.value_or(head);
    state->saved_position = state->position;
    state->visible_position.store(state->position);
    state->replay_until = head;
    state->registration_done = std::move(done);
    state->target.store(head);
    state->pump_scheduled.store(true);
    boost::asio::post(state->strand, [state] { state->pump(); });
    return state;
}

void StreamHub::remove(SubscriptionState& state) {
    std::lock_guard lock(mutex_);
    for (auto it = subscriptions_.begin(); it != subscriptions_.end(); ++it) {
        if (it->get() == &state) {
            subscriptions_.erase(it);
            subscription_count_.fetch_sub(1);
            if (state.durable_name) active_durable_names_.erase(*state.durable_name);
            return;
        }
    }
}

void StreamHub::committed(SequenceNumber head) {
    if (subscription_count_.load() == 0) return;
    std::lock_guard lock(mutex_);
    if (closed_) return;
    for (const auto& state : subscriptions_) {
        SequenceNumber known = state->target.load();
        while (known < head && !state->target.compare_exchange_weak(known, head)) {
        }
        if (!state->pump_scheduled.exchange(true))
            boost::asio::post(state->strand, [state] { state->pump(); });
    }
}

void StreamHub::shutdown() {
    std::vector<std::shared_ptr<SubscriptionState>> states;
    {
        std::lock_guard lock(mutex_);
        if (closed_.exchange(true)) return;
        states.swap(subscriptions_);
        subscription_count_.store(0);
        active_durable_names_.clear();
        for (const auto& state : states)
            state->active.store(false);
        // The poll timer is touched only by its own handler chain (asio timers are not
        // thread-safe): the chain ends by itself once closed_ is set, or with io_.stop().
        work_.reset();
    }
    io_.stop();
    for (std::thread& thread : threads_)
        thread.join();
    threads_.clear();
    // Nothing can be posted any more; drop what was queued (each checks closed and returns).
    io_.restart();
    io_.poll();
    for (const auto& state : states) {
        if (state->registration_done) {
            auto done = std::move(state->registration_done);
            state->registration_done = nullptr;
            done(Subscription(), std::make_exception_ptr(StoreError(
                                     ErrorCode::closed, "the store was closed during replay")));
        }
    }
}

}  // namespace factstr::detail
