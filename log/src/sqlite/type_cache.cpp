#include "type_cache.hpp"

#include "factstr/errors.hpp"
#include "factstr/json.hpp"
#include "statements.hpp"

namespace factstr::sqlite {

std::uint64_t TypeCache::next_instance() {
    static std::atomic<std::uint64_t> counter{0};
    return ++counter;
}

std::optional<std::int64_t> TypeCache::id(Connection& db, const std::string& name) {
    {
        std::lock_guard lock(mutex_);
        auto it = ids_.find(name);
        if (it != ids_.end()) return it->second;
    }
    Resetting find(db.statement(kTypeByName));
    find->bind(1, name);
    if (!find->step()) return std::nullopt;
    const std::int64_t id = find->integer(0);
    remember(id, name);
    return id;
}

const std::string& TypeCache::name(Connection& db, std::int64_t id) {
    // Rows come in runs of one type: a per-thread one-entry cache spares the shared map's
    // lock. It is keyed by this cache's instance number and generation.
    struct LastType {
        std::uint64_t instance = 0, generation = 0;
        std::int64_t id = 0;
        const std::string* name = nullptr;
    };
    thread_local LastType last;
    const std::uint64_t generation = generation_.load(std::memory_order_acquire);
    if (last.name && last.instance == instance_ && last.generation == generation && last.id == id)
        return *last.name;
    const std::string& name = name_uncached(db, id);
    last = LastType{instance_, generation, id, &name};
    return name;
}

const std::string& TypeCache::name_uncached(Connection& db, std::int64_t id) {
    {
        std::lock_guard lock(mutex_);
        auto it = names_.find(id);
        if (it != names_.end()) return it->second;
    }
    Resetting find(db.statement(kTypeById));
    find->bind(1, id);
    if (!find->step())
        throw StoreError(ErrorCode::corrupt_database,
                         "sqlite:" + db.path() + ": a fact refers to unknown event type id " +
                             std::to_string(id));
    std::string name(find->text(0));
    return remember(id, name);
}

const std::string& TypeCache::remember(std::int64_t id, const std::string& name) {
    std::lock_guard lock(mutex_);
    ids_.emplace(name, id);
    // unordered_map keeps references stable across inserts.
    return names_.emplace(id, name).first->second;
}

std::int64_t TypeCache::key(Connection& db, std::int64_t id) {
    return static_cast<std::int64_t>(json::type_index_key(name(db, id)));
}

std::int64_t TypeCache::intern(Connection& db, const std::string& name,
                               std::vector<std::string>& new_types) {
    if (auto existing = id(db, name)) return *existing;
    Resetting insert(db.statement(kInsertType));
    insert->bind(1, name);
    insert->run();
    const std::int64_t id = sqlite3_last_insert_rowid(db.handle());
    remember(id, name);
    new_types.push_back(name);
    return id;
}

void TypeCache::forget(const std::vector<std::string>& names) {
    std::lock_guard lock(mutex_);
    if (!names.empty()) generation_.fetch_add(1, std::memory_order_acq_rel);
    for (const std::string& name : names) {
        auto it = ids_.find(name);
        if (it == ids_.end()) continue;
        names_.erase(it->second);
        ids_.erase(it);
    }
}

}  // namespace factstr::sqlite
