#include "factstr/env.hpp"

namespace factstr {

Env::~Env() {
    unregister_sqlite_vfs(sqlite_vfs_);
}

Env& Env::system() noexcept {
    // Never destroyed: stores that outlive main's statics (a detached thread, an atexit
    // handler) may still read the clock.
    static Env* const env = new Env();
    return *env;
}

Timestamp Env::now() {
    return std::chrono::time_point_cast<std::chrono::microseconds>(
        std::chrono::system_clock::now());
}

std::chrono::steady_clock::time_point Env::monotonic_now() {
    return std::chrono::steady_clock::now();
}

FileFault Env::before_file_op(const FileOperation&) {
    return FileFault::none;
}

}  // namespace factstr
