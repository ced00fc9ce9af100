// Shared by every subcommand of the `factstr` command: exit codes, errors, terminal
// detection, record output, NDJSON input and query building.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <factstr/factstr.hpp>

namespace CLI {
class App;
}

namespace fcli {

// Exit codes a script can rely on (also listed in `factstr --help`).
enum Exit : int {
    exit_ok = 0,
    exit_internal = 1,   // an unexpected failure (a bug)
    exit_bad_input = 2,  // usage, invalid JSON, invalid query, unknown URL scheme
    exit_conflict = 3,   // append_if found another context version; a projection declaration
                         // differs from the one the store holds (projections run)
    exit_store = 4,      // the store failed or could not be opened (not a factstr database…)
    exit_projection_failed = 5,  // a projection failed on a fact (projections status/run/rebuild)
};

// A failure the command reports on one line of stderr and turns into an exit code.
class CliError : public std::runtime_error {
  public:
    CliError(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
    int code() const noexcept { return code_; }

  private:
    int code_;
};

[[noreturn]] void fail_input(const std::string& message);
[[noreturn]] void fail_store(const std::string& message);

// Options every subcommand sees.
struct Globals {
    std::string store_url = "sqlite:./facts.db";
    bool no_color = false;
};

// A subcommand: its CLI11 node and what to run when it was chosen.
struct Command {
    CLI::App* app = nullptr;
    std::function<int()> run;
};

Command add_append(CLI::App& root, const Globals& globals);
Command add_query(CLI::App& root, const Globals& globals);
Command add_tail(CLI::App& root, const Globals& globals);
Command add_stats(CLI::App& root, const Globals& globals);
Command add_streams(CLI::App& root, const Globals& globals);
Command add_export(CLI::App& root, const Globals& globals);
Command add_import(CLI::App& root, const Globals& globals);
Command add_demo(CLI::App& root, const Globals& globals);
Command add_projections(CLI::App& root, const Globals& globals);

// Terminal detection: tables and colors only when the stream is a terminal.
bool stdout_is_tty();
bool stderr_is_tty();
// Colors on stdout: a terminal, no --no-color, no NO_COLOR variable.
bool use_color(const Globals& globals);

factstr::Store open_store(const Globals& globals);

// How records are printed.
enum class RecordFormat {
    plain,   // seq <TAB> occurred_at <TAB> event_type <TAB> payload  (stable, for pipes)
    pretty,  // aligned columns, colored on a terminal
    ndjson,  // one JSON object per line (json::record_to_json)
};

// One record as a single line (with the newline). `type_width` pads the event type in the
// pretty format.
std::string format_record(const factstr::EventRecord& record, RecordFormat format, bool color,
                          std::size_t type_width = 0);

// Writes all of `text` to stdout and flushes (so piped readers see facts at once).
void write_stdout(std::string_view text);

// Filters from the common flags: --type (repeated), --where (repeated, JSON), --query (full
// JSON form). Returns a query with no filters when none was given.
struct FilterFlags {
    std::vector<std::string> types;
    std::vector<std::string> wheres;
    std::string query_json;
};
void add_filter_flags(CLI::App& app, FilterFlags& flags);
factstr::EventQuery build_query(const FilterFlags& flags);

// Reads stdin (or a file) line by line, counting lines from 1. Blank lines are skipped.
class LineReader {
  public:
    LineReader(std::istream& in, std::string source_name);
    // False at the end of the input.
    bool next(std::string& line);
    std::uint64_t line_number() const { return line_number_; }
    const std::string& source() const { return source_; }
    // "stdin line 37"
    std::string where() const;

  private:
    std::istream& in_;
    std::string source_;
    std::uint64_t line_number_ = 0;
};

// Parses one NDJSON line into a json::Value, throwing CliError(bad_input) with
// "<where>: invalid JSON: <reason>".
factstr::json::Value parse_line(std::string_view line, const std::string& where);
// A member of an object value, or nullptr.
const factstr::json::Value* member(const factstr::json::Value& object, std::string_view key);
// A non-negative integer member (sequence numbers), or nullopt when absent; bad_input when
// present but not a non-negative integer.
std::optional<std::uint64_t> uint_member(const factstr::json::Value& object, std::string_view key,
                                         const std::string& where);

// "none" or a number, for --expect and friends.
std::optional<factstr::SequenceNumber> parse_version(const std::string& text,
                                                     std::string_view option);
std::string version_text(std::optional<factstr::SequenceNumber> version);  // "none" or "12"

// "12.3 MiB"
std::string human_bytes(std::uint64_t bytes);

// SIGINT/SIGTERM set a flag instead of killing the process (for tail -f).
void install_stop_signals();
bool stop_requested();

}  // namespace fcli
