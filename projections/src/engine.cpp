// The projector engine: leases, one page stream per held projection, status and rebuilds.
#include <unistd.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "factstr/projections.hpp"
#include "plan.hpp"
#include "tables.hpp"

namespace factstr::projections {
namespace {

using detail::DerivedTables;
using detail::Fence;
using detail::FoldFailure;
using detail::MetaRow;
using detail::PageDelta;
using detail::Plan;

std::string default_worker_id() {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    std::random_device random;
    char suffix[9];
    std::snprintf(suffix, sizeof suffix, "%08x", random());
    return std::string(host) + ":" + std::to_string(::getpid()) + ":" + suffix;
}

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
            status.lag_time =
                std::max(std::chrono::milliseconds(0),
                         std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now() - pending->occurred_at));
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

std::vector<std::string> table_names(const std::string& declaration) {
    std::vector<std::string> names;
    const Plan plan(parse_projection(declaration));
    for (const auto& table : plan.tables())
        names.push_back(table.name);
    return names;
}

// One held projection: a page stream from its checkpoint whose pages are folded and written
// with the checkpoint in one transaction.
class Projector : public std::enable_shared_from_this<Projector> {
  public:
    enum class Phase { running, failed, lost, interrupted, stopped };

    Projector(Store& store, const Projection& projection, std::string worker,
              std::size_t page_facts)
        : store_(store),
          plan_(projection),
          worker_(std::move(worker)),
          page_facts_(page_facts),
          tables_(detail::open_tables(store)) {}

    void start(SequenceNumber checkpoint) {
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
        last_write_ = std::chrono::steady_clock::now();
        std::weak_ptr<Projector> weak = shared_from_this();
        subscription_ = store_.stream_pages(checkpoint, plan_.union_query(), page_facts_,
                                            [weak](const BatchPage& page, Completion done) {
                                                if (auto self = weak.lock())
                                                    self->on_page(page, std::move(done));
                                                else
                                                    done.fail("the projector was stopped");
                                            });
    }

    // Stops the stream and waits for a page being written. A checkpoint moved past facts
    // this projection ignores is written now, so a restart does not read them again.
    void stop() {
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

    Phase phase() const {
        std::lock_guard lock(mutex_);
        return phase_;
    }
    SequenceNumber position() const {
        std::lock_guard lock(mutex_);
        return position_;
    }
    std::optional<std::string> error() const {
        std::lock_guard lock(mutex_);
        return error_;
    }
    const Plan& plan() const { return plan_; }

  private:
    void on_page(const BatchPage& page, Completion done) {
        std::lock_guard apply(apply_mutex_);
        try {
            const auto now = std::chrono::steady_clock::now();
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
            const std::string message =
                failure.what();  // names the fact; status names the projection
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

    bool write(const PageDelta& delta, const BatchPage& page,
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

    SequenceNumber persisted_value() {
        std::lock_guard lock(mutex_);
        return persisted_;
    }
    void set_position(SequenceNumber position, bool persisted) {
        std::lock_guard lock(mutex_);
        position_ = std::max(position_, position);
        if (persisted) persisted_ = position;
    }
    void fail(Phase phase, std::string message) {
        std::lock_guard lock(mutex_);
        phase_ = phase;
        error_ = std::move(message);
    }

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

}  // namespace

struct Engine::Impl {
    Store& store;
    EngineOptions options;

    std::mutex control_mutex;  // guards `control` (one connection, many callers)
    std::unique_ptr<DerivedTables> control;

    std::mutex mutex;
    std::condition_variable wake;
    std::map<std::string, Projection> declared;
    std::map<std::string, std::shared_ptr<Projector>> running;  // held projections
    std::map<std::string, std::string> refused;                 // name -> why it cannot run
    bool started = false;
    bool stopping = false;
    bool woken = false;  // a projection was added or rebuilt: a lease round now

    void wake_up() {
        {
            std::lock_guard lock(mutex);
            woken = true;
        }
        wake.notify_all();
    }
    std::thread lease_thread;

    Impl(Store& s, EngineOptions o) : store(s), options(std::move(o)) {
        if (options.worker_id.empty()) options.worker_id = default_worker_id();
        if (options.lease.count() < 30) options.lease = std::chrono::milliseconds(30);
        if (options.page_facts == 0) options.page_facts = 65536;
        control = detail::open_tables(store);
    }

    // One round of lease work: renew what is held, drop what was lost, claim what is free.
    void tick() {
        std::vector<std::string> held, wanted;
        {
            std::lock_guard lock(mutex);
            if (stopping) return;
            for (const auto& [name, projector] : running)
                held.push_back(name);
            for (const auto& [name, projection] : declared)
                if (!running.count(name) && !refused.count(name)) wanted.push_back(name);
        }
        std::vector<std::string> renewed, claimed, surplus;
        std::vector<MetaRow> meta;
        try {
            std::lock_guard lock(control_mutex);
            // A fair share: with n live workers, each holds at most ceil(declared / n), so a
            // worker that joins gets work, and one that leaves has its share taken over.
            const std::size_t live = control->heartbeat(options.worker_id, options.lease);
            const std::size_t share = (held.size() + wanted.size() + live - 1) / live;
            if (!held.empty()) renewed = control->renew(held, options.worker_id, options.lease);
            while (renewed.size() > share) {
                surplus.push_back(renewed.back());
                renewed.pop_back();
            }
            if (!wanted.empty() && renewed.size() < share)
                claimed = control->claim(wanted, options.worker_id, options.lease,
                                         share - renewed.size());
            if (!claimed.empty()) meta = control->meta();
        } catch (const std::exception&) {
            return;  // the database is unreachable for now; held leases run out by themselves
        }
        std::vector<std::shared_ptr<Projector>> to_stop;
        std::vector<std::string> to_release = surplus;
        {
            std::lock_guard lock(mutex);
            if (stopping) return;
            for (auto it = running.begin(); it != running.end();) {
                const bool still_held =
                    std::find(renewed.begin(), renewed.end(), it->first) != renewed.end();
                const Projector::Phase phase = it->second->phase();
                if (!still_held || phase == Projector::Phase::lost ||
                    phase == Projector::Phase::interrupted) {
                    // Lost, or stopped by a passing failure: start again from the stored
                    // checkpoint (after a new claim, if the lease went elsewhere).
                    to_stop.push_back(it->second);
                    if (still_held) to_release.push_back(it->first);
                    it = running.erase(it);
                } else {
                    ++it;
                }
            }
            for (const std::string& name : claimed) {
                auto row = std::find_if(meta.begin(), meta.end(),
                                        [&](const MetaRow& m) { return m.name == name; });
                auto declared_it = declared.find(name);
                if (row == meta.end() || declared_it == declared.end()) continue;
                const std::string fingerprint = projections::fingerprint(declared_it->second);
                if (row->fingerprint != fingerprint) {
                    refused[name] = "projection '" + name +
                                    "': the store holds another declaration (fingerprint " +
                                    row->fingerprint + ", this engine runs " + fingerprint +
                                    "); it was rebuilt elsewhere";
                    to_release.push_back(name);
                    continue;
                }
                try {
                    auto projector = std::make_shared<Projector>(
                        store, declared_it->second, options.worker_id, options.page_facts);
                    projector->start(row->checkpoint);
                    running[name] = std::move(projector);
                } catch (const std::exception&) {
                    to_release.push_back(name);  // tried again at the next tick
                }
            }
        }
        for (const auto& projector : to_stop)
            projector->stop();
        if (!to_release.empty()) {
            try {
                std::lock_guard lock(control_mutex);
                control->release(to_release, options.worker_id);
            } catch (const std::exception&) {
            }
        }
    }

    void lease_loop() {
        std::unique_lock lock(mutex);
        while (!stopping) {
            lock.unlock();
            tick();
            lock.lock();
            wake.wait_for(lock, options.lease / 3, [&] { return stopping || woken; });
            woken = false;
        }
    }

    void stop() {
        std::map<std::string, std::shared_ptr<Projector>> held;
        {
            std::lock_guard lock(mutex);
            if (!started) return;
            stopping = true;
            held.swap(running);
        }
        wake.notify_all();
        if (lease_thread.joinable()) lease_thread.join();
        std::vector<std::string> names;
        for (auto& [name, projector] : held) {
            projector->stop();
            names.push_back(name);
        }
        try {
            std::lock_guard lock(control_mutex);
            if (!names.empty()) control->release(names, options.worker_id);
            control->leave(options.worker_id);
        } catch (const std::exception&) {
            // The leases run out by themselves.
        }
        std::lock_guard lock(mutex);
        started = false;
        stopping = false;
    }
};

Engine::Engine(Store& store, EngineOptions options)
    : impl_(std::make_shared<Impl>(store, std::move(options))) {}

Engine::~Engine() {
    try {
        stop();
    } catch (...) {
    }
}

void Engine::add(Projection projection) {
    const Plan plan(projection);
    {
        std::lock_guard lock(impl_->control_mutex);
        impl_->control->register_projection(plan);
    }
    {
        std::lock_guard lock(impl_->mutex);
        impl_->refused.erase(projection.name);
        impl_->declared[projection.name] = std::move(projection);
    }
    impl_->wake_up();
}

void Engine::start() {
    {
        std::lock_guard lock(impl_->mutex);
        if (impl_->started) return;
        impl_->started = true;
        impl_->stopping = false;
    }
    impl_->tick();  // claims right away: start() returns with the free projections running
    impl_->lease_thread = std::thread([impl = impl_.get()] { impl->lease_loop(); });
}

void Engine::stop() {
    impl_->stop();
}

bool Engine::wait_caught_up(std::chrono::milliseconds timeout) {
    const SequenceNumber head = impl_->store.head();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto next_meta = std::chrono::steady_clock::now();
    std::set<std::string> held_elsewhere;
    while (true) {
        bool done = true;
        std::vector<std::string> unheld;
        {
            std::lock_guard lock(impl_->mutex);
            for (const auto& [name, projector] : impl_->running) {
                const auto phase = projector->phase();
                if (phase == Projector::Phase::failed) continue;
                if (phase != Projector::Phase::running || projector->position() < head)
                    done = false;
            }
            // A declared projection this engine does not run yet counts once another worker
            // holds it (it is that worker's to advance); until then it is still to be claimed.
            if (impl_->started)
                for (const auto& [name, projection] : impl_->declared)
                    if (!impl_->running.count(name) && !impl_->refused.count(name))
                        unheld.push_back(name);
        }
        if (!unheld.empty() && std::chrono::steady_clock::now() >= next_meta) {
            held_elsewhere.clear();
            try {
                std::lock_guard lock(impl_->control_mutex);
                for (const MetaRow& row : impl_->control->meta())
                    if (row.owner && *row.owner != impl_->options.worker_id)
                        held_elsewhere.insert(row.name);
            } catch (const std::exception&) {
            }
            next_meta = std::chrono::steady_clock::now() + std::chrono::milliseconds(10);
        }
        for (const std::string& name : unheld)
            if (!held_elsewhere.count(name)) done = false;
        if (done) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

void Engine::rebuild(const Projection& projection) {
    Plan plan(projection);
    auto tables = detail::open_tables(impl_->store);
    std::optional<MetaRow> existing;
    for (MetaRow& row : tables->meta())
        if (row.name == plan.name()) existing = std::move(row);
    if (!existing) {
        tables->register_projection(plan);  // new: built by running it
    } else {
        const std::vector<std::string> old_tables = table_names(existing->declaration);
        tables->begin_rebuild(plan);
        plan.reset_state_cache(true);
        Backend& backend = impl_->store.backend();
        const CompiledQuery filter(plan.union_query());
        SequenceNumber checkpoint = 0;
        while (true) {
            BatchPage page = backend.read_batches(checkpoint, filter, impl_->options.page_facts);
            if (page.scanned_through <= checkpoint) break;
            PageDelta delta;
            try {
                delta = plan.fold(page, [](const std::vector<Cell>&) {
                    return std::optional<std::vector<Cell>>();
                });
            } catch (const FoldFailure& failure) {
                throw StoreError(ErrorCode::projection_failed,
                                 "rebuilding projection '" + plan.name() + "': " + failure.what());
            }
            Fence fence{checkpoint, page.scanned_through, impl_->options.worker_id,
                        plan.fingerprint(), true};
            if (!tables->apply(plan, delta, fence))
                throw StoreError(ErrorCode::declaration_changed,
                                 "rebuilding projection '" + plan.name() +
                                     "': another rebuild of it started meanwhile");
            checkpoint = page.scanned_through;
        }
        tables->finish_rebuild(plan, checkpoint, old_tables);
    }
    // This engine runs the new declaration from now on.
    std::shared_ptr<Projector> old;
    {
        std::lock_guard lock(impl_->mutex);
        if (impl_->declared.count(plan.name())) impl_->declared[plan.name()] = projection;
        impl_->refused.erase(plan.name());
        if (auto it = impl_->running.find(plan.name()); it != impl_->running.end()) {
            old = it->second;
            impl_->running.erase(it);
        }
    }
    if (old) old->stop();
    impl_->wake_up();
}

std::vector<ProjectionStatus> Engine::status() const {
    std::vector<MetaRow> meta;
    {
        std::lock_guard lock(impl_->control_mutex);
        meta = impl_->control->meta();
    }
    const SequenceNumber head = impl_->store.head();
    std::vector<ProjectionStatus> result;
    for (MetaRow& row : meta) {
        SequenceNumber checkpoint = row.checkpoint;
        {
            std::lock_guard lock(impl_->mutex);
            if (auto it = impl_->running.find(row.name); it != impl_->running.end()) {
                checkpoint = std::max(checkpoint, it->second->position());
                if (!row.error && it->second->phase() == Projector::Phase::failed)
                    row.error = it->second->error();
            }
            if (auto it = impl_->refused.find(row.name); it != impl_->refused.end() && !row.error)
                row.error = it->second;
        }
        result.push_back(status_of(impl_->store.backend(), row, head, checkpoint));
    }
    return result;
}

Table Engine::read(std::string_view table) const {
    std::vector<MetaRow> meta;
    {
        std::lock_guard lock(impl_->control_mutex);
        meta = impl_->control->meta();
    }
    for (const MetaRow& row : meta) {
        const Plan plan(parse_projection(row.declaration));
        for (const auto& spec : plan.tables()) {
            if (spec.name != table) continue;
            std::lock_guard lock(impl_->control_mutex);
            return impl_->control->read(spec);
        }
    }
    throw InvalidInput(ErrorCode::invalid_argument,
                       "no projection has a table named '" + std::string(table) + "'");
}

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

}  // namespace factstr::projections
