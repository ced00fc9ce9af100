// Group commit, shared by every engine that commits in transactions (SQLite, PostgreSQL):
// requests issued at the same time — blocking calls from several threads, asynchronous
// submissions from a few — are committed together in one transaction, each keeping its own
// range and its own conflict outcome.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "factstr/internal/backend.hpp"

namespace factstr {

class GroupCommit {
  public:
    using Commit = std::function<SequenceNumber(std::vector<WriteRequest*>&)>;
    using AfterCommit = std::function<void(SequenceNumber)>;

    // Queues `request`. The first thread to find no commit in progress becomes the leader:
    // it commits every queued request (its own included) with `commit`, which fills in each
    // request's result or error and returns the new head (0 when nothing was written); then,
    // with the queue released, calls `after_commit(head)` and the asynchronous requests'
    // completions, and leads again while requests are queued. A blocking request
    // (no completion) returns once it is done; an asynchronous one returns at once unless
    // its thread became the leader.
    void submit(WriteRequest& request, const Commit& commit, const AfterCommit& after_commit) {
        std::unique_lock lock(mutex_);
        queue_.push_back(&request);
        const bool blocking = !request.completion;
        bool led = false;
        for (;;) {
            if (blocking && request.done) return;
            if (leader_active_) {
                if (!blocking) return;  // the active leader commits it
                changed_.wait(lock);
                continue;
            }
            if (queue_.empty()) return;
            // Once its own request is done, a leader goes on only for asynchronous requests:
            // a blocked caller leads its own.
            if ((led || (blocking && request.done)) &&
                std::any_of(queue_.begin(), queue_.end(),
                            [](const WriteRequest* r) { return !r->completion; }))
                return;
            lead(lock, commit, after_commit);
            led = true;
        }
    }

  private:
    // One round: commits everything queued. Called and returns with `lock` held.
    void lead(std::unique_lock<std::mutex>& lock, const Commit& commit,
              const AfterCommit& after_commit) {
        leader_active_ = true;
        std::vector<WriteRequest*> group;
        group.swap(queue_);
        lock.unlock();
        SequenceNumber head = 0;
        try {
            head = commit(group);
        } catch (...) {
            for (WriteRequest* r : group)
                if (!r->error && !r->result) r->error = std::current_exception();
        }
        if (head) after_commit(head);
        // Completions run after the commit signal, so that a completion that then reads a
        // live stream finds its own facts delivered in order.
        std::vector<WriteRequest*> finished;
        lock.lock();
        for (WriteRequest* r : group) {
            if (r->completion)
                finished.push_back(r);
            else
                r->done = true;
        }
        leader_active_ = false;
        changed_.notify_all();
        lock.unlock();
        for (WriteRequest* r : finished) {
            r->done = true;
            auto completion = std::move(r->completion);
            completion(*r);  // may destroy *r
        }
        lock.lock();
    }

    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<WriteRequest*> queue_;
    bool leader_active_ = false;
};

}  // namespace factstr
