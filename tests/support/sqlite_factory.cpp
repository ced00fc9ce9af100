#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "store_factory.hpp"

namespace factstr::testing {
namespace {

// A directory of its own for this test process, removed at exit.
struct ScratchDirectory {
    std::filesystem::path path;
    ScratchDirectory() {
        path = std::filesystem::temp_directory_path() /
               ("factstr-conformance-" + std::to_string(::getpid()));
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    ~ScratchDirectory() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
};

const std::filesystem::path& directory() {
    static ScratchDirectory scratch;
    return scratch.path;
}

std::string& last_path() {
    static std::string path;
    return path;
}

}  // namespace

// FACTSTR_SQLITE_URL_OPTIONS: the conformance suite also runs with a tiny index_batch, so
// that its logs of a few hundred facts are mostly read through the folded key index.
#ifndef FACTSTR_SQLITE_URL_OPTIONS
#define FACTSTR_SQLITE_URL_OPTIONS ""
#endif

const char* backend_name() {
    return "sqlite";
}

Store make_store() {
    static std::atomic<int> counter{0};
    last_path() = (directory() / ("store-" + std::to_string(counter++) + ".db")).string();
    return open("sqlite:" + last_path() + FACTSTR_SQLITE_URL_OPTIONS);
}

std::optional<Store> reopen_store() {
    return open("sqlite:" + last_path() + FACTSTR_SQLITE_URL_OPTIONS);
}

}  // namespace factstr::testing
