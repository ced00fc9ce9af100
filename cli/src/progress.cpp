#include "progress.hpp"

#include <cstdio>

#include <fmt/format.h>

#include "common.hpp"

namespace fcli {
namespace {

std::string duration_text(double seconds) {
    if (seconds < 0 || seconds > 360000) return "--:--";
    const auto s = static_cast<std::uint64_t>(seconds + 0.5);
    if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    return fmt::format("{}:{:02}", s / 60, s % 60);
}

}  // namespace

Progress::Progress(std::string label, std::uint64_t total, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      enabled_(stderr_is_tty()),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
    if (enabled_ && !finished_ && drawn_) std::fputs("\n", stderr);
}

void Progress::update(std::uint64_t done, std::uint64_t count) {
    done_ = done;
    count_ = count == UINT64_MAX ? done : count;
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    // Quick jobs draw nothing; longer ones redraw ten times a second.
    if (now - start_ < std::chrono::milliseconds(300)) return;
    if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    drawn_ = true;
    draw(false);
}

void Progress::finish() {
    if (!enabled_ || finished_) return;
    finished_ = true;
    if (!drawn_) return;
    draw(true);
    std::fputs("\n", stderr);
}

void Progress::draw(bool final) {
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double rate = elapsed > 0 ? static_cast<double>(count_) / elapsed : 0;
    std::string line = fmt::format("\r{} ", label_);
    if (total_ > 0) {
        const double fraction =
            std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
        const int width = 30;
        const int filled = static_cast<int>(fraction * width);
        line += '[';
        line.append(static_cast<std::size_t>(filled), '#');
        line.append(static_cast<std::size_t>(width - filled), '.');
        line += "] ";
        line += fmt::format("{:3.0f}% ", fraction * 100);
    }
    line += fmt::format("{} {}  {:.0f} {}/s", count_, unit_, rate, unit_);
    if (total_ > 0 && !final) {
        const double fraction = static_cast<double>(done_) / static_cast<double>(total_);
        const double eta = fraction > 0 ? elapsed * (1 - fraction) / fraction : -1;
        line += "  ETA " + duration_text(eta);
    } else if (final) {
        line += "  in " + duration_text(elapsed);
    }
    line += "\x1b[K";
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
}

}  // namespace fcli
