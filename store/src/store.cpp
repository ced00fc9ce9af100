#include "factstr/store.hpp"

#include <condition_variable>
#include <future>
#include <mutex>

#include "factstr/internal/backend.hpp"

#include "stream_hub.hpp"

namespace factstr {

Completion::Completion(std::shared_ptr<detail::SubscriptionState> state, SequenceNumber batch_end)
    : state_(std::move(state)), batch_end_(batch_end) {}

Completion::Completion(Completion&& other) noexcept
    : state_(std::move(other.state_)), batch_end_(other.batch_end_) {}

Completion::~Completion() {
    if (state_) finish(false, "the handler dropped its completion without reporting");
}

void Completion::finish(bool success, std::string reason) {
    auto state = std::move(state_);
    if (!state) return;  // already reported
    auto& hub = *state->hub;
    hub.post(*state, [state, end = batch_end_, success, reason = std::move(reason)] {
        state->finish_delivery(end, success, reason);
    });
}

void Completion::finish_run(SequenceNumber handled_through, SequenceNumber failed_batch_end,
                            std::string reason) {
    auto state = std::move(state_);
    if (!state) return;  // already reported
    auto& hub = *state->hub;
    hub.post(*state, [state, handled_through, failed_batch_end, reason = std::move(reason)] {
        state->finish_run(handled_through, failed_batch_end, reason);
    });
}

Subscription::Subscription(std::shared_ptr<detail::SubscriptionState> state)
    : state_(std::move(state)) {}

void Subscription::unsubscribe() {
    if (!state_) return;
    if (!state_->active.exchange(false)) return;
    state_->hub->remove(*state_);
    // Progress made since the last page end is written now, on the stream's strand.
    state_->hub->post(*state_, [state = state_] { state->persist_cursor_quietly(); });
}

bool Subscription::active() const {
    return state_ && state_->active.load();
}

std::optional<std::string> Subscription::failure() const {
    if (!state_) return std::nullopt;
    std::lock_guard lock(state_->failure_mutex);
    return state_->failure;
}

SequenceNumber Subscription::position() const {
    return state_ ? state_->visible_position.load() : 0;
}

struct Store::Impl {
    std::unique_ptr<Backend> backend;
    std::shared_ptr<detail::StreamHub> hub;

    // Asynchronous appends not yet completed: close() waits for them.
    std::mutex in_flight_mutex;
    std::condition_variable in_flight_done;
    std::size_t in_flight = 0;

    void submit(std::shared_ptr<WriteRequest> request, AppendDone done) {
        {
            std::lock_guard lock(in_flight_mutex);
            ++in_flight;
        }
        request->completion = [this, done = std::move(done)](WriteRequest& r) {
            if (r.error)
                done(nullptr, r.error);
            else
                done(&*r.result, nullptr);
            std::lock_guard lock(in_flight_mutex);
            if (--in_flight == 0) in_flight_done.notify_all();
        };
        backend->submit(std::move(request));
    }

    Backend& open_backend() const {
        if (!backend) throw StoreError(ErrorCode::closed, "the store is closed");
        return *backend;
    }
};

Store::Store(std::unique_ptr<Backend> backend, StoreOptions options) : impl_(new Impl) {
    if (!backend) throw InvalidInput(ErrorCode::invalid_argument, "Store needs a backend");
    impl_->backend = std::move(backend);
    impl_->hub = std::make_shared<detail::StreamHub>(*impl_->backend, options.stream_threads);
    impl_->backend->set_commit_listener(
        [hub = impl_->hub.get()](SequenceNumber head) { hub->committed(head); });
}

Store::Store(Store&&) noexcept = default;

Store& Store::operator=(Store&& other) noexcept {
    if (this != &other) {
        close();
        impl_ = std::move(other.impl_);
    }
    return *this;
}

Store::~Store() {
    close();
}

void Store::close() {
    if (!impl_ || !impl_->backend) return;
    {
        std::unique_lock lock(impl_->in_flight_mutex);
        impl_->in_flight_done.wait(lock, [&] { return impl_->in_flight == 0; });
    }
    impl_->hub->shutdown();
    impl_->backend.reset();
}

AppendResult Store::append(std::vector<NewEvent> events) {
    Backend& backend = impl_->open_backend();
    return backend.append(prepare_events(std::move(events)));
}

AppendIfResult Store::append_if(std::vector<NewEvent> events, const EventQuery& context_query,
                                std::optional<SequenceNumber> expected_context_version) {
    Backend& backend = impl_->open_backend();
    auto prepared = prepare_events(std::move(events));
    CompiledQuery context(context_query);
    return backend.append_if(std::move(prepared), context, expected_context_version);
}

void Store::append_async(std::vector<NewEvent> events, AppendDone done) {
    impl_->open_backend();
    if (!done) throw InvalidInput(ErrorCode::invalid_argument, "append_async needs a callback");
    auto request = std::make_shared<WriteRequest>();
    request->events = prepare_events(std::move(events));
    impl_->submit(std::move(request), std::move(done));
}

void Store::append_if_async(std::vector<NewEvent> events, const EventQuery& context_query,
                            std::optional<SequenceNumber> expected_context_version,
                            AppendDone done) {
    impl_->open_backend();
    if (!done) throw InvalidInput(ErrorCode::invalid_argument, "append_if_async needs a callback");
    auto request = std::make_shared<WriteRequest>();
    request->events = prepare_events(std::move(events));
    request->owned_context.emplace(context_query);
    request->context = &*request->owned_context;
    request->expected = expected_context_version;
    impl_->submit(std::move(request), std::move(done));
}

AppendResult Store::append_recorded(std::vector<EventRecord> records,
                                    std::optional<SequenceNumber> expected_first) {
    Backend& backend = impl_->open_backend();
    std::vector<NewEvent> events;
    events.reserve(records.size());
    for (EventRecord& record : records)
        events.push_back(NewEvent{std::move(record.event_type), std::move(record.payload)});
    auto prepared = prepare_events(std::move(events));
    for (std::size_t i = 0; i < prepared.size(); ++i)
        prepared[i].occurred_at = records[i].occurred_at;
    if (!expected_first) return backend.append(std::move(prepared));
    if (*expected_first == 0)
        throw InvalidInput(ErrorCode::invalid_argument, "sequence numbers start at 1, not 0");
    // The whole log as the context: its version is the head.
    std::optional<SequenceNumber> head_before;
    if (*expected_first > 1) head_before = *expected_first - 1;
    AppendIfResult outcome = backend.append_if(std::move(prepared), CompiledQuery(), head_before);
    if (auto* conflict = outcome.conflict())
        throw InvalidInput(ErrorCode::invalid_argument,
                           "the batch was to start at sequence number " +
                               std::to_string(*expected_first) + " but the log's head is " +
                               std::to_string(conflict->actual_context_version.value_or(0)) +
                               "; nothing was written");
    return *outcome.append_result();
}

QueryResult Store::query(const EventQuery& query) const {
    Backend& backend = impl_->open_backend();
    return backend.query(CompiledQuery(query));
}

QueryResult Store::query(const EventQuery& query, std::size_t limit) const {
    Backend& backend = impl_->open_backend();
    return backend.query(CompiledQuery(query), limit);
}

BatchPage Store::read_page(SequenceNumber after, const EventQuery& query,
                           std::size_t max_facts) const {
    Backend& backend = impl_->open_backend();
    EventQuery filter = query;
    filter.min_sequence_number.reset();
    return backend.read_batches(after, CompiledQuery(filter), std::max<std::size_t>(max_facts, 1));
}

SequenceNumber Store::for_each_batch(
    SequenceNumber after, SequenceNumber through, const EventQuery& query, std::size_t page_facts,
    const std::function<bool(const CommittedBatch&)>& visit) const {
    Backend& backend = impl_->open_backend();
    EventQuery filter = query;
    filter.min_sequence_number.reset();
    const CompiledQuery compiled(filter);
    SequenceNumber position = after;
    while (position < through) {
        BatchPage page =
            backend.read_batches(position, compiled, std::max<std::size_t>(page_facts, 1));
        for (const CommittedBatch& batch : page.batches) {
            if (batch.last_sequence_number > through) return through;
            if (!visit(batch)) return batch.last_sequence_number;
        }
        if (page.scanned_through <= position) break;
        position = std::min(page.scanned_through, through);
    }
    return position;
}

std::string Store::describe() const {
    return impl_->open_backend().describe();
}

Env& Store::env() const {
    return impl_->open_backend().env();
}

std::optional<std::uint64_t> Store::storage_bytes() const {
    return impl_->open_backend().storage_bytes();
}

Subscription Store::stream_all(StreamHandler handler) {
    impl_->open_backend();
    return Subscription(
        impl_->hub->add(CompiledQuery(), std::move(handler), std::nullopt, std::nullopt, nullptr));
}

Subscription Store::stream_to(const EventQuery& query, StreamHandler handler) {
    impl_->open_backend();
    return Subscription(impl_->hub->add(CompiledQuery(query), std::move(handler), std::nullopt,
                                        std::nullopt, nullptr));
}

Subscription Store::stream_pages(SequenceNumber after, std::optional<EventQuery> query,
                                 std::size_t max_facts, PageHandler handler) {
    impl_->open_backend();
    if (!handler) throw InvalidInput(ErrorCode::invalid_argument, "stream_pages needs a handler");
    CompiledQuery filter = query ? CompiledQuery(*query) : CompiledQuery();
    return Subscription(impl_->hub->add(std::move(filter), StreamHandler([](const Batch&) {}),
                                        std::nullopt, after, nullptr, std::move(handler),
                                        max_facts));
}

void Store::stream_to_durable_async(const DurableStream& stream, std::optional<EventQuery> query,
                                    StreamHandler handler, RegistrationDone done) {
    Backend& backend = impl_->open_backend();
    if (stream.name.empty())
        throw InvalidInput(ErrorCode::invalid_argument, "a durable stream needs a non-empty name");
    CompiledQuery filter = query ? CompiledQuery(*query) : CompiledQuery();
    const SequenceNumber cursor = backend.load_cursor(stream.name).value_or(0);
    impl_->hub->add(std::move(filter), std::move(handler), stream.name, cursor, std::move(done));
}

namespace {
// The blocking form of durable registration: waits for the replay to be handled.
Subscription register_durable(Store& store, const DurableStream& stream,
                              std::optional<EventQuery> query, StreamHandler handler) {
    std::promise<Subscription> registered;
    auto result = registered.get_future();
    store.stream_to_durable_async(
        stream, std::move(query), std::move(handler),
        [&registered](Subscription subscription, std::exception_ptr error) {
            if (error)
                registered.set_exception(std::move(error));
            else
                registered.set_value(std::move(subscription));
        });
    return result.get();
}
}  // namespace

Subscription Store::stream_to_durable(const DurableStream& stream, const EventQuery& query,
                                      StreamHandler handler) {
    return register_durable(*this, stream, query, std::move(handler));
}

Subscription Store::stream_all_durable(const DurableStream& stream, StreamHandler handler) {
    return register_durable(*this, stream, std::nullopt, std::move(handler));
}

SequenceNumber Store::head() const {
    return impl_->open_backend().head();
}

std::vector<DurableCursorInfo> Store::durable_cursors() const {
    return impl_->open_backend().cursors();
}

Backend& Store::backend() const {
    return impl_->open_backend();
}

Store open(std::string_view url, StoreOptions options) {
    return Store(open_backend(url), options);
}

Store bootstrap(std::string_view server_url, std::string_view database_name, StoreOptions options) {
    return Store(bootstrap_postgres(server_url, database_name), options);
}

Store memory_store(StoreOptions options) {
    return Store(make_memory_backend(), options);
}

Store sqlite_store(const std::string& path, SqliteOptions sqlite, StoreOptions options) {
    sqlite.path = path;
    return Store(make_sqlite_backend(std::move(sqlite)), options);
}

}  // namespace factstr
