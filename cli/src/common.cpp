#include "common.hpp"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <istream>

#include <unistd.h>

#include <fmt/color.h>
#include <fmt/format.h>
#include <CLI/CLI.hpp>

namespace fcli {

void fail_input(const std::string& message) {
    throw CliError(exit_bad_input, message);
}
void fail_store(const std::string& message) {
    throw CliError(exit_store, message);
}

bool stdout_is_tty() {
    return ::isatty(STDOUT_FILENO) == 1;
}
bool stderr_is_tty() {
    return ::isatty(STDERR_FILENO) == 1;
}

bool use_color(const Globals& globals) {
    if (globals.no_color) return false;
    const char* no_color = std::getenv("NO_COLOR");
    if (no_color && *no_color) return false;
    return stdout_is_tty();
}

factstr::Store open_store(const Globals& globals) {
    return factstr::open(globals.store_url);
}

std::string format_record(const factstr::EventRecord& record, RecordFormat format, bool color,
                          std::size_t type_width) {
    switch (format) {
        case RecordFormat::ndjson: {
            std::string line = factstr::json::record_to_json(record);
            line += '\n';
            return line;
        }
        case RecordFormat::plain:
            return fmt::format("{}\t{}\t{}\t{}\n", record.sequence_number,
                               factstr::json::format_rfc3339(record.occurred_at), record.event_type,
                               record.payload);
        case RecordFormat::pretty:
            break;
    }
    const std::string seq = fmt::format("{:>8}", record.sequence_number);
    const std::string at = factstr::json::format_rfc3339(record.occurred_at);
    const std::string type = fmt::format("{:<{}}", record.event_type, type_width);
    if (!color) return fmt::format("{}  {}  {}  {}\n", seq, at, type, record.payload);
    return fmt::format("{}  {}  {}  {}\n", fmt::styled(seq, fmt::emphasis::bold),
                       fmt::styled(at, fmt::fg(fmt::terminal_color::bright_black)),
                       fmt::styled(type, fmt::fg(fmt::terminal_color::cyan)), record.payload);
}

void write_stdout(std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
}

void add_filter_flags(CLI::App& app, FilterFlags& flags) {
    app.add_option("--type,-t", flags.types,
                   "Only facts of this event type (repeat for several: ORed)");
    app.add_option("--where,-w", flags.wheres,
                   "Only facts whose payload contains this JSON (subset match; repeat: ORed), "
                   "e.g. '{\"accountId\":\"a1\"}'");
    app.add_option("--query,-q", flags.query_json,
                   "The full query as JSON: {\"filters\":[{\"event_types\":[…],"
                   "\"payload_predicates\":[…]}],\"min_sequence_number\":N}");
}

factstr::EventQuery build_query(const FilterFlags& flags) {
    factstr::EventQuery query;
    if (!flags.query_json.empty()) {
        if (!flags.types.empty() || !flags.wheres.empty())
            fail_input("--query cannot be combined with --type or --where");
        try {
            query = factstr::parse_event_query(flags.query_json);
        } catch (const factstr::InvalidInput& e) {
            fail_input(std::string("--query: ") + e.what());
        }
    } else if (!flags.types.empty() || !flags.wheres.empty()) {
        factstr::EventFilter filter;
        if (!flags.types.empty()) filter.event_types = flags.types;
        if (!flags.wheres.empty()) {
            for (std::size_t i = 0; i < flags.wheres.size(); ++i)
                parse_line(flags.wheres[i], fmt::format("--where #{}", i + 1));
            filter.payload_predicates = flags.wheres;
        }
        query.filters = std::vector<factstr::EventFilter>{filter};
    }
    // Validate now, so that a bad predicate is reported as bad input before any work.
    try {
        factstr::validate(query);
    } catch (const factstr::InvalidInput& e) {
        fail_input(std::string("query: ") + e.what());
    }
    return query;
}

LineReader::LineReader(std::istream& in, std::string source_name)
    : in_(in), source_(std::move(source_name)) {}

bool LineReader::next(std::string& line) {
    while (std::getline(in_, line)) {
        ++line_number_;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") != std::string::npos) return true;
    }
    return false;
}

std::string LineReader::where() const {
    return fmt::format("{} line {}", source_, line_number_);
}

factstr::json::Value parse_line(std::string_view line, const std::string& where) {
    try {
        return factstr::json::Value::parse(line, where);
    } catch (const factstr::InvalidInput& e) {
        // The library says "<what> is not valid JSON: <reason>"; keep only the reason.
        std::string message = e.what();
        const std::string marker = "is not valid JSON: ";
        const auto at = message.find(marker);
        if (at != std::string::npos) message = message.substr(at + marker.size());
        fail_input(where + ": invalid JSON: " + message);
    }
}

const factstr::json::Value* member(const factstr::json::Value& object, std::string_view key) {
    if (object.kind != factstr::json::Value::Kind::object) return nullptr;
    for (const auto& [name, value] : object.members)
        if (name == key) return &value;
    return nullptr;
}

std::optional<std::uint64_t> uint_member(const factstr::json::Value& object, std::string_view key,
                                         const std::string& where) {
    using Kind = factstr::json::Value::Kind;
    const auto* value = member(object, key);
    if (!value || value->kind == Kind::null) return std::nullopt;
    if (value->kind == Kind::uint64) return value->uint64;
    if (value->kind == Kind::int64 && value->int64 >= 0)
        return static_cast<std::uint64_t>(value->int64);
    fail_input(fmt::format("{}: \"{}\" must be a non-negative integer", where, key));
}

std::optional<factstr::SequenceNumber> parse_version(const std::string& text,
                                                     std::string_view option) {
    if (text == "none" || text == "null") return std::nullopt;
    factstr::SequenceNumber value = 0;
    std::size_t used = 0;
    try {
        if (text.empty() || text[0] == '-') throw std::invalid_argument("negative");
        value = std::stoull(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != text.size())
        fail_input(fmt::format("{}: expected a sequence number or 'none', got '{}'", option, text));
    return value;
}

std::string version_text(std::optional<factstr::SequenceNumber> version) {
    return version ? std::to_string(*version) : std::string("none");
}

std::string human_bytes(std::uint64_t bytes) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double value = static_cast<double>(bytes);
    int unit = 0;
    while (value >= 1024 && unit < 4) {
        value /= 1024;
        ++unit;
    }
    if (unit == 0) return fmt::format("{} B", bytes);
    return fmt::format("{:.1f} {}", value, units[unit]);
}

namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) {
    g_stop.store(true);
}
}  // namespace

void install_stop_signals() {
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
}

bool stop_requested() {
    return g_stop.load();
}

}  // namespace fcli
