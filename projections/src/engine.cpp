// The projector engine: leases, one Projector per held projection, status and rebuilds.
#include <unistd.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "factstr/env.hpp"
#include "factstr/projections.hpp"
#include "plan.hpp"
#include "projector.hpp"
#include "status.hpp"
#include "tables.hpp"

namespace factstr::projections {
namespace {

using detail::DerivedTables;
using detail::Fence;
using detail::FoldFailure;
using detail::MetaRow;
using detail::PageDelta;
using detail::Plan;
using detail::Projector;
using detail::status_of;

std::string default_worker_id() {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    std::random_device random;
    char suffix[9];
    std::snprintf(suffix, sizeof suffix, "%08x", random());
    return std::string(host) + ":" + std::to_string(::getpid()) + ":" + suffix;
}

std::vector<std::string> table_names(const std::string& declaration) {
    std::vector<std::string> names;
    const Plan plan(parse_projection(declaration));
    for (const auto& table : plan.tables())
        names.push_back(table.name);
    return names;
}

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
    impl_->lease_thread = impl_->store.env().start_thread(
        "factstr-lease", [impl = impl_.get()] { impl->lease_loop(); });
}

void Engine::stop() {
    impl_->stop();
}

bool Engine::wait_caught_up(std::chrono::milliseconds timeout) {
    const SequenceNumber head = impl_->store.head();
    const auto deadline = factstr::Env::system().monotonic_now() + timeout;
    auto next_meta = factstr::Env::system().monotonic_now();
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
        if (!unheld.empty() && factstr::Env::system().monotonic_now() >= next_meta) {
            held_elsewhere.clear();
            try {
                std::lock_guard lock(impl_->control_mutex);
                for (const MetaRow& row : impl_->control->meta())
                    if (row.owner && *row.owner != impl_->options.worker_id)
                        held_elsewhere.insert(row.name);
            } catch (const std::exception&) {
            }
            next_meta = factstr::Env::system().monotonic_now() + std::chrono::milliseconds(10);
        }
        for (const std::string& name : unheld)
            if (!held_elsewhere.count(name)) done = false;
        if (done) return true;
        if (factstr::Env::system().monotonic_now() >= deadline) return false;
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

std::size_t Table::column(std::string_view name) const {
    for (std::size_t i = 0; i < columns.size(); ++i)
        if (columns[i] == name) return i;
    throw InvalidInput(ErrorCode::invalid_argument,
                       "the table has no column '" + std::string(name) + "'");
}

}  // namespace factstr::projections
