// W8: bytes per fact held by the memory store (log and indexes), and the RSS growth.
#include <fmt/format.h>

#include "bench.hpp"

namespace factstr::bench {

void w8_memory_size(Bench& bench, std::size_t size) {
    const long rss_before = current_rss_kb();
    Store store = factstr::open("memory:");
    fill(store, size, 100000);
    const double bytes = static_cast<double>(store.storage_bytes().value_or(0)) / size;
    const double rss = (current_rss_kb() - rss_before) * 1024.0 / size;
    Result r{
        "W8",
        fmt::format("memory store bytes/fact at {} facts (RSS growth {:.0f} B/fact)", size, rss), 0,
        "B/fact"};
    r.value = bytes;
    bench.add(r);
}

}  // namespace factstr::bench
