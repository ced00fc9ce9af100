// A directory of its own under the system's temporary directory, removed with everything in it
// when the object goes. Names carry the test's prefix, the process id and a counter, so that
// concurrent ctest processes and several TempDirs in one test never share a path.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <system_error>

namespace factstr::testing {

struct TempDir {
    std::filesystem::path path;

    explicit TempDir(const std::string& prefix = "factstr-test") {
        static std::atomic<int> counter{0};
        path = std::filesystem::temp_directory_path() /
               (prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    std::string file(const std::string& name) const { return (path / name).string(); }
};

}  // namespace factstr::testing
