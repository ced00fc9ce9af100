// The one stream mechanism shared by every backend. A subscription is a position in the log
// plus a strand: a commit signal (in-process, or found by polling for other processes) only
// raises the subscription's target; the subscription then pulls the committed batches after
// its position from the backend, one at a time, in order. Replay and live delivery are the
// same loop, so the hand-over has no gap and no duplicate.
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "factstr/internal/backend.hpp"
#include "factstr/store.hpp"

namespace factstr::detail {

class StreamHub;

struct SubscriptionState : std::enable_shared_from_this<SubscriptionState> {
    using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;

    SubscriptionState(std::shared_ptr<StreamHub> hub, CompiledQuery filter, StreamHandler handler,
                      std::optional<std::string> durable_name);

    const std::shared_ptr<StreamHub> hub;
    Strand strand;
    const CompiledQuery filter;
    const StreamHandler handler;
    const std::optional<std::string> durable_name;
    // Page mode (Store::stream_pages): whole pages go to this handler instead.
    Store::PageHandler page_handler;
    std::size_t page_facts = 0;
    bool stops_on_failure() const { return durable_name || page_handler; }

    std::atomic<bool> active{true};
    std::atomic<SequenceNumber> target{0};
    std::atomic<bool> pump_scheduled{false};
    std::atomic<SequenceNumber> visible_position{0};

    // Owned by the strand.
    SequenceNumber position = 0;
    SequenceNumber saved_position = 0;
    std::deque<CommittedBatch> pending;
    std::vector<CommittedBatch> run;  // the batches handed to a run handler (async_runs)
    SequenceNumber pending_scanned_through = 0;
    bool in_flight = false;
    SequenceNumber replay_until = 0;
    Store::RegistrationDone registration_done;

    mutable std::mutex failure_mutex;
    std::optional<std::string> failure;

    // A read or cursor write that failed because the connection to the server was lost
    // (ErrorCode::connection_failure) is tried again after a pause that doubles up to a second;
    // the stream stays at its position meanwhile. Owned by the strand.
    std::optional<boost::asio::steady_timer> retry_timer;
    std::chrono::milliseconds retry_delay{0};

    void schedule_pump();
    void pump();
    void finish_delivery(SequenceNumber batch_end, bool success, const std::string& reason);
    void finish_run(SequenceNumber handled_through, SequenceNumber failed_batch_end,
                    const std::string& reason);
    void advance_to(SequenceNumber position);
    bool persist_cursor();
    void persist_cursor_quietly();
    void stop_with_failure(const std::string& reason);
    void retry_later();
};

class StreamHub : public std::enable_shared_from_this<StreamHub> {
  public:
    StreamHub(Backend& backend, unsigned threads);
    ~StreamHub();

    // Registers a subscription whose position starts at `start` (live: the head; durable: the
    // stored cursor). `done`, if set, is called on the strand once the position reaches
    // `replay_until`, or with the error that stopped it.
    std::shared_ptr<SubscriptionState> add(CompiledQuery filter, StreamHandler handler,
                                           std::optional<std::string> durable_name,
                                           std::optional<SequenceNumber> start,
                                           Store::RegistrationDone done,
                                           Store::PageHandler page_handler = nullptr,
                                           std::size_t page_facts = 0);
    void remove(SubscriptionState& state);
    // The commit signal: every subscription's target rises to `head`.
    void committed(SequenceNumber head);
    // Posts `fn` to the strand unless the hub is closed. Returns false when closed.
    template <class Fn>
    bool post(SubscriptionState& state, Fn&& fn);
    // Stops every subscription and joins the threads: no handler runs after it returns.
    void shutdown();

    Backend& backend() { return backend_; }
    boost::asio::io_context& io() { return io_; }
    bool closed() const { return closed_.load(); }

  private:
    void start_threads_locked();
    void schedule_poll();

    Backend& backend_;
    const unsigned thread_count_;
    boost::asio::io_context io_;
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
    std::optional<boost::asio::steady_timer> poll_timer_;
    std::vector<std::thread> threads_;

    std::mutex mutex_;
    std::atomic<bool> closed_{false};
    std::atomic<std::size_t> subscription_count_{0};
    std::vector<std::shared_ptr<SubscriptionState>> subscriptions_;
    std::set<std::string, std::less<>> active_durable_names_;
};

template <class Fn>
bool StreamHub::post(SubscriptionState& state, Fn&& fn) {
    std::lock_guard lock(mutex_);
    if (closed_) return false;
    boost::asio::post(state.strand, std::forward<Fn>(fn));
    return true;
}

}  // namespace factstr::detail
