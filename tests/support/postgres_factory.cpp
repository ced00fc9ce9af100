// Each make_store() bootstraps a fresh, uniquely named database on the server named by
// FACTSTR_TEST_POSTGRES_URL (see postgres_env.hpp for what happens when it is unset).
#include "postgres_env.hpp"
#include "store_factory.hpp"

namespace factstr::testing {
namespace {

const bool server_available = require_postgres_server("conformance_postgres");

std::string& last_database() {
    static std::string name;
    return name;
}

}  // namespace

const char* backend_name() {
    return "postgres";
}

Store make_store() {
    (void)server_available;
    last_database() = fresh_database_name();
    return bootstrap(postgres_server_url(), last_database());
}

std::optional<Store> reopen_store() {
    return bootstrap(postgres_server_url(), last_database());
}

}  // namespace factstr::testing
