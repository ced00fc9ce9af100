#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "store_factory.hpp"

namespace factstr::testing {
namespace {

std::filesystem::path directory() {
    static const std::filesystem::path dir = [] {
        auto base = std::filesystem::temp_directory_path() /
                    ("factstr-conformance-" + std::to_string(::getpid()));
        std::filesystem::remove_all(base);
        std::filesystem::create_directories(base);
        return base;
    }();
    return dir;
}

std::string& last_path() {
    static std::string path;
    return path;
}

struct Cleanup {
    ~Cleanup() {
        std::error_code ignored;
        std::filesystem::remove_all(directory(), ignored);
    }
} cleanup;

}  // namespace

const char* backend_name() { return "sqlite"; }

Store make_store() {
    static std::atomic<int> counter{0};
    last_path() = (directory() / ("store-" + std::to_string(counter++) + ".db")).string();
    return open("sqlite:" + last_path());
}

std::optional<Store> reopen_store() { return open("sqlite:" + last_path()); }

}  // namespace factstr::testing
