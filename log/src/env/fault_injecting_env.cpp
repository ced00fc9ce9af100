#include <string>

#include "factstr/env.hpp"
#include "factstr/errors.hpp"

namespace factstr {

FaultInjectingEnv::FaultInjectingEnv(Clocks clocks, Timestamp manual_start)
    : clocks_(clocks), manual_start_(manual_start) {}

void FaultInjectingEnv::fail(Fault fault) {
    if (fault.nth == 0) {
        throw InvalidInput(ErrorCode::invalid_argument,
                           "FaultInjectingEnv::fail: nth counts from 1 (1 is the next operation)");
    }
    std::lock_guard lock(mutex_);
    faults_.push_back(ArmedFault{std::move(fault)});
}

void FaultInjectingEnv::clear_faults() {
    std::lock_guard lock(mutex_);
    faults_.clear();
}

std::uint64_t FaultInjectingEnv::count(FileOp op) const {
    std::lock_guard lock(mutex_);
    return counts_[static_cast<std::size_t>(op)];
}

std::uint64_t FaultInjectingEnv::faults_injected() const {
    std::lock_guard lock(mutex_);
    return faults_injected_;
}

void FaultInjectingEnv::advance(std::chrono::microseconds by) {
    if (by < std::chrono::microseconds::zero()) {
        throw InvalidInput(ErrorCode::invalid_argument,
                           "FaultInjectingEnv::advance: cannot move the monotonic clock back by " +
                               std::to_string(-by.count()) + " us");
    }
    std::lock_guard lock(mutex_);
    wall_offset_ += by;
    monotonic_offset_ += by;
}

void FaultInjectingEnv::set_wall_clock(Timestamp reading) {
    std::lock_guard lock(mutex_);
    wall_offset_ = reading - wall_base();
}

Timestamp FaultInjectingEnv::wall_base() const {
    return clocks_ == Clocks::manual ? manual_start_ : Env::system().now();
}

std::chrono::steady_clock::time_point FaultInjectingEnv::monotonic_base() const {
    return clocks_ == Clocks::manual ? std::chrono::steady_clock::time_point{}
                                     : Env::system().monotonic_now();
}

Timestamp FaultInjectingEnv::now() {
    std::lock_guard lock(mutex_);
    return wall_base() + wall_offset_;
}

std::chrono::steady_clock::time_point FaultInjectingEnv::monotonic_now() {
    std::lock_guard lock(mutex_);
    return monotonic_base() + monotonic_offset_;
}

FileFault FaultInjectingEnv::before_file_op(const FileOperation& operation) {
    std::lock_guard lock(mutex_);
    ++counts_[static_cast<std::size_t>(operation.op)];
    FileFault decision = FileFault::none;
    for (auto& armed : faults_) {
        const Fault& fault = armed.fault;
        if (fault.op != operation.op || !operation.path.ends_with(fault.path_suffix)) continue;
        ++armed.seen;
        const bool fires = armed.seen == fault.nth || (fault.and_later && armed.seen > fault.nth);
        if (fires && decision == FileFault::none) decision = fault.fault;
    }
    if (decision != FileFault::none) ++faults_injected_;
    return decision;
}

}  // namespace factstr
