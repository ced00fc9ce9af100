#include "factstr/env.hpp"

#include <pthread.h>

#include <string>
#include <utility>

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

std::thread Env::start_thread(std::string_view name, std::function<void()> body) {
    // Linux keeps 15 bytes of a thread's name and refuses longer ones.
    std::string short_name(name.substr(0, 15));
    return std::thread([short_name = std::move(short_name), body = std::move(body)] {
        pthread_setname_np(pthread_self(), short_name.c_str());
        body();
    });
}

FileFault Env::before_file_op(const FileOperation&) {
    return FileFault::none;
}

}  // namespace factstr
