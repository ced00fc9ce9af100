// Group commit, shared by the SQLite and PostgreSQL backends: appends and append_ifs issued
// at the same time by threads of one process are committed together in one transaction,
// each keeping its own range and its own conflict outcome.
#pragma once

#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "factstr/internal/backend.hpp"

namespace factstr {

// One caller's append (context == nullptr) or append_if, and its outcome.
struct WriteRequest {
    std::vector<PreparedEvent>* events = nullptr;
    const CompiledQuery* context = nullptr;
    std::optional<SequenceNumber> expected;
    std::optional<AppendIfResult> result;  // set by the commit, unless `error` is
    std::exception_ptr error;
    bool done = false;
};

class GroupCommit {
  public:
    // Queues one append (context == nullptr) or append_if and returns its outcome.
    template <class Commit, class AfterCommit>
    AppendIfResult submit(std::vector<PreparedEvent>& events, const CompiledQuery* context,
                          std::optional<SequenceNumber> expected, Commit&& commit,
                          AfterCommit&& after_commit) {
        WriteRequest request;
        request.events = &events;
        request.context = context;
        request.expected = expected;
        submit(request, std::forward<Commit>(commit), std::forward<AfterCommit>(after_commit));
        return *request.result;
    }

  private:
    // Queues `request`. The first thread to find no commit in progress becomes the leader:
    // it calls `commit(group)` with every queued request (its own included), which fills in
    // each request's result or error and returns the new head (0 when nothing was written);
    // then, with the queue released, `after_commit(head)`. The others wait for their
    // outcome. Rethrows the request's error.
    template <class Commit, class AfterCommit>
    void submit(WriteRequest& request, Commit&& commit, AfterCommit&& after_commit) {
        std::unique_lock lock(mutex_);
        queue_.push_back(&request);
        while (!request.done) {
            if (leader_active_) {
                changed_.wait(lock);
                continue;
            }
            leader_active_ = true;
            std::vector<WriteRequest*> group;
            group.swap(queue_);
            lock.unlock();
            const SequenceNumber head = commit(group);
            lock.lock();
            for (WriteRequest* r : group)
                r->done = true;
            leader_active_ = false;
            changed_.notify_all();
            if (head) {
                lock.unlock();
                after_commit(head);
                lock.lock();
            }
        }
        lock.unlock();
        if (request.error) std::rethrow_exception(request.error);
    }

    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<WriteRequest*> queue_;
    bool leader_active_ = false;
};

}  // namespace factstr
