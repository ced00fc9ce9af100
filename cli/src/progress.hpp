// A progress bar with rate and ETA on stderr, drawn only when stderr is a terminal.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace fcli {

class Progress {
  public:
    // `total`: units of work (0 = unknown: no bar, no ETA). `unit`: what the rate counts.
    Progress(std::string label, std::uint64_t total, std::string unit);
    ~Progress();
    // `done` units of `total` finished; `count` items handled so far (for the rate; defaults
    // to `done`).
    void update(std::uint64_t done, std::uint64_t count = UINT64_MAX);
    // Draws the final state and ends the line.
    void finish();

  private:
    void draw(bool final);
    std::string label_, unit_;
    std::uint64_t total_, done_ = 0, count_ = 0;
    bool enabled_, finished_ = false, drawn_ = false;
    std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace fcli
