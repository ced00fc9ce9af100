// The PostgreSQL server that tests run against: FACTSTR_TEST_POSTGRES_URL. When it is unset,
// the tests are skipped (the program exits 0 before running any), except in CI (CI=true),
// where they must run: the program fails loudly instead.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace factstr::testing {

inline std::string postgres_server_url() {
    const char* url = std::getenv("FACTSTR_TEST_POSTGRES_URL");
    return url ? url : "";
}

// Exits the program (0 = skipped) when there is no server to test against; called during
// static initialization, before the test runner starts.
inline bool require_postgres_server(const char* program) {
    if (!postgres_server_url().empty()) return true;
    const char* ci = std::getenv("CI");
    if (ci && std::string(ci) == "true") {
        std::fprintf(stderr,
                     "%s: FACTSTR_TEST_POSTGRES_URL is not set, and in CI the PostgreSQL tests "
                     "must run (scripts/test starts a server and sets it)\n",
                     program);
        std::_Exit(1);
    }
    std::fprintf(stderr,
                 "%s: skipped: set FACTSTR_TEST_POSTGRES_URL "
                 "(e.g. postgres://postgres@127.0.0.1:5432/postgres) to run the PostgreSQL tests\n",
                 program);
    std::_Exit(0);
}

// A database name no other test program or run uses.
inline std::string fresh_database_name() {
    static std::atomic<int> counter{0};
    return "factstr_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
}

}  // namespace factstr::testing
