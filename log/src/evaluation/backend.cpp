// What every engine shares above the port: queries and pages through the shared evaluation,
// and the blocking and asynchronous writes through one group commit.
#include <future>

#include "factstr/errors.hpp"
#include "factstr/internal/evaluation.hpp"
#include "factstr/internal/group_commit.hpp"

namespace factstr {

Backend::Backend() : group_commit_(std::make_unique<GroupCommit>()) {}
Backend::~Backend() = default;

QueryResult Backend::query(const CompiledQuery& query, std::size_t limit) {
    QueryResult result;
    read([&](LogView& view) { result = evaluate_query(view, query, limit); });
    return result;
}

BatchPage Backend::read_batches(SequenceNumber after, const CompiledQuery& filter,
                                std::size_t max_facts) {
    BatchPage page;
    read([&](LogView& view) { page = read_page(view, after, filter, max_facts); });
    return page;
}

void Backend::run_blocking(WriteRequest& request) {
    std::vector<WriteRequest*> one{&request};
    if (!groups_commits()) {
        const SequenceNumber head = commit_group(one);
        if (head) notify_committed(head);
    } else {
        group_commit_->submit(
            request, [this](std::vector<WriteRequest*>& group) { return commit_group(group); },
            [this](SequenceNumber head) { notify_committed(head); });
    }
    if (request.error) std::rethrow_exception(request.error);
}

AppendResult Backend::append(std::vector<PreparedEvent>&& events) {
    WriteRequest request;
    request.events = std::move(events);
    run_blocking(request);
    return *request.result->append_result();
}

AppendIfResult Backend::append_if(std::vector<PreparedEvent>&& events, const CompiledQuery& context,
                                  std::optional<SequenceNumber> expected) {
    WriteRequest request;
    request.events = std::move(events);
    request.context = &context;
    request.expected = expected;
    run_blocking(request);
    return *request.result;
}

void Backend::submit(std::shared_ptr<WriteRequest> request) {
    if (!request->completion)
        throw InvalidInput(ErrorCode::invalid_argument, "an asynchronous write needs a completion");
    // The request keeps itself alive until its completion has run.
    auto completion = std::move(request->completion);
    request->completion = [keep = request, completion = std::move(completion)](
                              WriteRequest& r) mutable { completion(r); };
    WriteRequest& ref = *request;
    request.reset();
    if (!groups_commits()) {
        std::vector<WriteRequest*> one{&ref};
        SequenceNumber head = 0;
        try {
            head = commit_group(one);
        } catch (...) {
            if (!ref.result) ref.error = std::current_exception();
        }
        if (head) notify_committed(head);
        ref.done = true;
        auto done = std::move(ref.completion);
        done(ref);
        return;
    }
    group_commit_->submit(
        ref, [this](std::vector<WriteRequest*>& group) { return commit_group(group); },
        [this](SequenceNumber head) { notify_committed(head); });
}

}  // namespace factstr
