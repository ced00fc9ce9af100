// factstr streams: the durable cursors stored in the log: name, query, position, lag.
#include <memory>

#include <fmt/color.h>
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "common.hpp"

namespace fcli {
namespace {

struct StreamsOptions {
    bool json = false;
    bool exact = false;
};

int run(const StreamsOptions& options, const Globals& globals) {
    factstr::Store store = open_store(globals);
    const factstr::SequenceNumber head = store.head();
    auto cursors = store.durable_cursors();
    std::sort(cursors.begin(), cursors.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });

    struct Row {
        std::string name, query;
        factstr::SequenceNumber position, lag;
        std::optional<std::uint64_t> pending;
    };
    std::vector<Row> rows;
    for (const auto& cursor : cursors) {
        // "" and "{}" both mean every fact (stream_all_durable).
        const bool all = cursor.query_json.empty() || cursor.query_json == "{}";
        Row row{cursor.name, all ? "" : cursor.query_json, cursor.position,
                head > cursor.position ? head - cursor.position : 0, std::nullopt};
        if (options.exact) {
            factstr::EventQuery query =
                all ? factstr::EventQuery{} : factstr::parse_event_query(cursor.query_json);
            query.min_sequence_number = cursor.position;
            row.pending = store.query(query).event_records.size();
        }
        rows.push_back(std::move(row));
    }

    std::string out;
    if (options.json) {
        out = "[";
        for (const auto& row : rows) {
            if (out.size() > 1) out += ',';
            out += "{\"name\":";
            factstr::json::append_quoted(out, row.name);
            out += ",\"query\":" + (row.query.empty() ? std::string("null") : row.query);
            out += fmt::format(",\"position\":{},\"lag\":{}", row.position, row.lag);
            if (row.pending) out += fmt::format(",\"pending\":{}", *row.pending);
            out += '}';
        }
        out += "]\n";
    } else if (!stdout_is_tty()) {
        for (const auto& row : rows) {
            out += fmt::format("{}\t{}\t{}\t{}", row.name, row.position, row.lag,
                               row.query.empty() ? "all" : row.query);
            if (row.pending) out += fmt::format("\t{}", *row.pending);
            out += '\n';
        }
    } else if (rows.empty()) {
        out = fmt::format("no durable streams (head {})\n", head);
    } else {
        std::size_t name_w = 4;
        for (const auto& row : rows)
            name_w = std::max(name_w, row.name.size());
        std::string header = fmt::format("{:<{}}  {:>10}  {:>10}  {}{}", "NAME", name_w, "POSITION",
                                         "LAG", options.exact ? "PENDING     " : "", "QUERY");
        out += use_color(globals) ? fmt::format("{}\n", fmt::styled(header, fmt::emphasis::bold))
                                  : header + "\n";
        for (const auto& row : rows)
            out += fmt::format("{:<{}}  {:>10}  {:>10}  {}{}\n", row.name, name_w, row.position,
                               row.lag, row.pending ? fmt::format("{:>10}  ", *row.pending) : "",
                               row.query.empty() ? "all facts" : row.query);
        out += fmt::format("head {}\n", head);
    }
    write_stdout(out);
    return exit_ok;
}

}  // namespace

Command add_streams(CLI::App& root, const Globals& globals) {
    auto options = std::make_shared<StreamsOptions>();
    CLI::App* app = root.add_subcommand(
        "streams", "Durable streams (cursors): name, position, lag behind the head, query");
    app->add_flag("--json", options->json, "One JSON array");
    app->add_flag("--exact", options->exact,
                  "Also count the matching facts after each cursor (pending; reads them)");
    app->footer(R"(lag = head - position: facts in the log after the cursor, matching or not.
Output when piped: "NAME<TAB>POSITION<TAB>LAG<TAB>QUERY[<TAB>PENDING]" per stream (QUERY
is "all" for stream_all_durable streams), sorted by name.)");
    return {app, [options, &globals] { return run(*options, globals); }};
}

}  // namespace fcli
