// factstr query: facts matching filters, as a table (terminal), plain lines, JSON or NDJSON.
#include <algorithm>
#include <limits>
#include <memory>

#include <sys/ioctl.h>
#include <unistd.h>

#include <fmt/color.h>
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "common.hpp"

namespace fcli {
namespace {

struct QueryOptions {
    FilterFlags filters;
    std::optional<factstr::SequenceNumber> after;
    std::optional<std::size_t> limit;
    bool json = false;
    bool ndjson = false;
    bool plain = false;
};

std::size_t terminal_width() {
    winsize size{};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
    return 120;
}

// Counts UTF-8 code points, good enough for column widths.
std::size_t display_width(std::string_view text) {
    return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }));
}

std::string truncate(const std::string& text, std::size_t width) {
    if (display_width(text) <= width) return text;
    if (width <= 1) return "…";
    std::string out;
    std::size_t shown = 0;
    for (char c : text) {
        const bool starts = (static_cast<unsigned char>(c) & 0xC0) != 0x80;
        if (starts && ++shown > width - 1) break;
        out += c;
    }
    return out + "…";
}

void print_table(const std::vector<factstr::EventRecord>& records, bool color) {
    std::size_t seq_w = 3, type_w = 10;
    for (const auto& r : records) {
        seq_w = std::max(seq_w, std::to_string(r.sequence_number).size());
        type_w = std::max(type_w, display_width(r.event_type));
    }
    const std::size_t at_w = 27;
    const std::size_t used = seq_w + at_w + type_w + 6;
    const std::size_t width = terminal_width();
    const std::size_t payload_w = width > used + 10 ? width - used : 10;

    std::string out;
    const std::string header = fmt::format("{:>{}}  {:<{}}  {:<{}}  {}", "SEQ", seq_w,
                                           "OCCURRED_AT", at_w, "EVENT_TYPE", type_w, "PAYLOAD");
    out += color ? fmt::format("{}\n", fmt::styled(header, fmt::emphasis::bold)) : header + "\n";
    for (const auto& r : records) {
        const std::string seq = fmt::format("{:>{}}", r.sequence_number, seq_w);
        const std::string at = factstr::json::format_rfc3339(r.occurred_at);
        const std::string type =
            r.event_type + std::string(type_w - display_width(r.event_type), ' ');
        const std::string payload = truncate(r.payload, payload_w);
        if (color)
            out += fmt::format("{}  {}  {}  {}\n", fmt::styled(seq, fmt::emphasis::bold),
                               fmt::styled(at, fmt::fg(fmt::terminal_color::bright_black)),
                               fmt::styled(type, fmt::fg(fmt::terminal_color::cyan)), payload);
        else
            out += fmt::format("{}  {}  {}  {}\n", seq, at, type, payload);
    }
    write_stdout(out);
}

int run(const QueryOptions& options, const Globals& globals) {
    if (int(options.json) + int(options.ndjson) + int(options.plain) > 1)
        fail_input("choose one of --json, --ndjson, --plain");
    factstr::EventQuery query = build_query(options.filters);
    if (options.after) query.min_sequence_number = *options.after;

    factstr::Store store = open_store(globals);
    factstr::QueryResult result;
    if (!options.limit) {
        result = store.query(query);
    } else {
        result = store.query(query, *options.limit);
    }

    const std::string versions =
        fmt::format("current_context_version={} last_returned_sequence_number={}",
                    version_text(result.current_context_version),
                    version_text(result.last_returned_sequence_number));
    const bool tty = stdout_is_tty();
    if (options.json) {
        std::string out = "{\"event_records\":[";
        for (std::size_t i = 0; i < result.event_records.size(); ++i) {
            if (i) out += ',';
            out += factstr::json::record_to_json(result.event_records[i]);
        }
        auto number = [](std::optional<factstr::SequenceNumber> v) {
            return v ? std::to_string(*v) : std::string("null");
        };
        out += fmt::format(
            "],\"last_returned_sequence_number\":{},\"current_context_version\":{}}}\n",
            number(result.last_returned_sequence_number), number(result.current_context_version));
        write_stdout(out);
    } else if (options.ndjson || options.plain || !tty) {
        const RecordFormat format = options.ndjson ? RecordFormat::ndjson : RecordFormat::plain;
        std::string out;
        for (const auto& record : result.event_records) {
            out += format_record(record, format, false);
            if (out.size() > (1 << 20)) {
                write_stdout(out);
                out.clear();
            }
        }
        write_stdout(out);
        std::fprintf(stderr, "%s\n", versions.c_str());
    } else {
        const bool color = use_color(globals);
        print_table(result.event_records, color);
        const std::string summary =
            fmt::format("{} fact{}; {}", result.event_records.size(),
                        result.event_records.size() == 1 ? "" : "s", versions);
        write_stdout(color ? fmt::format("{}\n", fmt::styled(summary, fmt::emphasis::faint))
                           : summary + "\n");
    }
    return exit_ok;
}

}  // namespace

Command add_query(CLI::App& root, const Globals& globals) {
    auto options = std::make_shared<QueryOptions>();
    CLI::App* app =
        root.add_subcommand("query",
                            "Print the facts matching filters, with current_context_version and "
                            "last_returned_sequence_number");
    add_filter_flags(*app, options->filters);
    app->add_option("--after,-a", options->after,
                    "Only facts after this sequence number (min_sequence_number; exclusive)");
    app->add_option("--limit,-n", options->limit, "At most N facts");
    app->add_flag("--json", options->json,
                  "One JSON document: {\"event_records\":[…],\"last_returned_sequence_number\":N,"
                  "\"current_context_version\":N}");
    app->add_flag("--ndjson", options->ndjson, "One JSON record per line");
    app->add_flag("--plain", options->plain,
                  "Tab-separated lines (the default when stdout is not a terminal)");
    app->footer(R"(Filters: --type and --where build one filter (types ORed, predicates ORed, the
two parts ANDed); --query takes the full JSON form with several filters.

Output: on a terminal an aligned table and a summary line. Otherwise (or with --plain)
one line per fact, "SEQ<TAB>OCCURRED_AT<TAB>EVENT_TYPE<TAB>PAYLOAD", and the versions
line "current_context_version=N last_returned_sequence_number=N" on stderr (also with
--ndjson). --json puts both versions in the document (none = null).

Examples:
  factstr query --type Deposited --where '{"accountId":"a1"}'
  factstr query --after 100 --limit 10 --ndjson
  factstr query --query '{"filters":[{"event_types":["A"]},{"event_types":["B"]}]}' --json)");
    return {app, [options, &globals] { return run(*options, globals); }};
}

}  // namespace fcli
