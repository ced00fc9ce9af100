// Event type names and their ids in event_types, cached per store: facts store a type id,
// readers need the name, and the key index keys a type by json::type_index_key(name).
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "factstr/database/sqlite_connection.hpp"

namespace factstr::sqlite {

class TypeCache {
  public:
    // The id of `name` in `db`, when the type exists there. One indexed read when not cached.
    std::optional<std::int64_t> id(Connection& db, const std::string& name);
    // The name of type `id`. Throws StoreError(corrupt_database) for an unknown id. References
    // stay valid while the store is open (unless forget() drops the type).
    const std::string& name(Connection& db, std::int64_t id);
    // The type's key in payload_postings and the tail.
    std::int64_t key(Connection& db, std::int64_t id);
    // The id of `name`, inserted into event_types when new (inside a write transaction);
    // a new name is added to `new_types`.
    std::int64_t intern(Connection& db, const std::string& name,
                        std::vector<std::string>& new_types);
    // A rolled-back transaction's new types do not exist: drop them from the cache.
    void forget(const std::vector<std::string>& names);

  private:
    const std::string& name_uncached(Connection& db, std::int64_t id);
    const std::string& remember(std::int64_t id, const std::string& name);

    static std::uint64_t next_instance();
    const std::uint64_t instance_ = next_instance();
    std::atomic<std::uint64_t> generation_{0};
    std::mutex mutex_;
    std::unordered_map<std::string, std::int64_t> ids_;
    std::unordered_map<std::int64_t, std::string> names_;
};

}  // namespace factstr::sqlite
