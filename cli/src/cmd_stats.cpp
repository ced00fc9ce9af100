// factstr stats: fact count, head, batches, first and last occurred_at, counts per event type,
// database size, durable streams. Reads the log once, page by page.
#include <filesystem>
#include <map>
#include <memory>

#include <fmt/color.h>
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "common.hpp"
#include "progress.hpp"

namespace fcli {
namespace {

struct StatsOptions {
    bool json = false;
};

std::optional<std::uint64_t> database_bytes(factstr::Store& store) {
    return store.storage_bytes();
}

int run(const StatsOptions& options, const Globals& globals) {
    factstr::Store store = open_store(globals);
    const factstr::SequenceNumber head = store.head();

    std::uint64_t facts = 0, batches = 0;
    std::optional<factstr::Timestamp> first_at, last_at;
    std::map<std::string, std::uint64_t> per_type;
    Progress progress("reading", head, "facts");
    store.for_each_batch(0, head, {}, 10000, [&](const factstr::CommittedBatch& batch) {
        ++batches;
        for (const auto& record : batch.records) {
            ++facts;
            if (!first_at) first_at = record.occurred_at;
            last_at = record.occurred_at;
            ++per_type[record.event_type];
        }
        progress.update(batch.last_sequence_number);
        return true;
    });
    progress.finish();
    const auto bytes = database_bytes(store);
    const auto streams = store.durable_cursors().size();
    auto at_text = [](const std::optional<factstr::Timestamp>& at) {
        return at ? factstr::json::format_rfc3339(*at) : std::string("none");
    };

    std::string out;
    if (options.json) {
        auto at_json = [&](const std::optional<factstr::Timestamp>& at) {
            if (!at) return std::string("null");
            std::string s;
            factstr::json::append_quoted(s, factstr::json::format_rfc3339(*at));
            return s;
        };
        std::string types = "{";
        for (const auto& [type, count] : per_type) {
            if (types.size() > 1) types += ',';
            factstr::json::append_quoted(types, type);
            types += fmt::format(":{}", count);
        }
        types += '}';
        std::string store_name;
        factstr::json::append_quoted(store_name, store.describe());
        out = fmt::format(
            "{{\"store\":{},\"facts\":{},\"head\":{},\"batches\":{},\"first_occurred_at\":{},"
            "\"last_occurred_at\":{},\"database_bytes\":{},\"durable_streams\":{},"
            "\"event_types\":{}}}\n",
            store_name, facts, head, batches, at_json(first_at), at_json(last_at),
            bytes ? std::to_string(*bytes) : "null", streams, types);
    } else if (!stdout_is_tty()) {
        out += fmt::format("store\t{}\n", store.describe());
        out += fmt::format("facts\t{}\nhead\t{}\nbatches\t{}\n", facts, head, batches);
        out += fmt::format("first_occurred_at\t{}\nlast_occurred_at\t{}\n", at_text(first_at),
                           at_text(last_at));
        out += fmt::format("database_bytes\t{}\n", bytes ? std::to_string(*bytes) : "unknown");
        out += fmt::format("durable_streams\t{}\n", streams);
        for (const auto& [type, count] : per_type)
            out += fmt::format("event_type\t{}\t{}\n", type, count);
    } else {
        const bool color = use_color(globals);
        auto key = [&](std::string_view k) {
            std::string padded = fmt::format("{:<18}", k);
            return color ? fmt::format("{}", fmt::styled(padded, fmt::emphasis::bold)) : padded;
        };
        out += key("store") + store.describe() + "\n";
        out += key("facts") + std::to_string(facts) + "\n";
        out += key("head") + std::to_string(head) + "\n";
        out += key("batches") + std::to_string(batches) + "\n";
        out += key("first occurred_at") + at_text(first_at) + "\n";
        out += key("last occurred_at") + at_text(last_at) + "\n";
        out += key("database size") + (bytes ? human_bytes(*bytes) : "unknown") + "\n";
        out += key("durable streams") + std::to_string(streams) + "\n";
        if (!per_type.empty()) {
            out += color ? fmt::format("{}\n", fmt::styled("event types", fmt::emphasis::bold))
                         : std::string("event types\n");
            std::size_t width = 0;
            for (const auto& [type, count] : per_type)
                width = std::max(width, type.size());
            for (const auto& [type, count] : per_type)
                out += fmt::format("  {:<{}}  {:>10}\n", type, width, count);
        }
    }
    write_stdout(out);
    return exit_ok;
}

}  // namespace

Command add_stats(CLI::App& root, const Globals& globals) {
    auto options = std::make_shared<StatsOptions>();
    CLI::App* app = root.add_subcommand(
        "stats",
        "Fact count, head sequence number, batches, first and last occurred_at, counts "
        "per event type, database size, number of durable streams");
    app->add_flag("--json", options->json, "One JSON document");
    app->footer(
        R"(Output when piped: "KEY<TAB>VALUE" lines, then one "event_type<TAB>TYPE<TAB>COUNT"
line per event type (sorted by type). Reads the whole log once (progress on a terminal).)");
    return {app, [options, &globals] { return run(*options, globals); }};
}

}  // namespace fcli
