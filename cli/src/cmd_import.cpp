// factstr import: loads an NDJSON export (see export) into a store. Two passes: the whole
// input is validated first (stdin is spooled to a temporary file), then appended batch by
// batch, one batch in memory at a time.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include <unistd.h>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "common.hpp"
#include "progress.hpp"

namespace fcli {
namespace {

using Kind = factstr::json::Value::Kind;

struct ImportOptions {
    std::string input = "-";
    bool append = false;
};

struct Line {
    std::string event_type;
    std::string payload;  // as exported (the store compacts it)
    std::optional<std::uint64_t> sequence_number;
    std::optional<std::uint64_t> batch_last;
    std::optional<factstr::Timestamp> occurred_at;
};

Line parse_fact(const std::string& text, const std::string& where) {
    factstr::json::Value value = parse_line(text, where);
    if (value.kind != Kind::object)
        fail_input(where + ": expected a JSON object (a record from factstr export)");
    Line line;
    const auto* type = member(value, "event_type");
    if (!type || type->kind != Kind::string || type->string.empty())
        fail_input(where + ": \"event_type\" must be a non-empty string");
    line.event_type = type->string;
    // The payload's text as exported, not re-serialized: an import is a faithful copy.
    std::optional<std::string> payload = factstr::json::member_text(text, "payload", where);
    if (!payload) fail_input(where + ": \"payload\" is missing");
    line.payload = std::move(*payload);
    line.sequence_number = uint_member(value, "sequence_number", where);
    line.batch_last = uint_member(value, "batch_last", where);
    if (const auto* at = member(value, "occurred_at"); at && at->kind != Kind::null) {
        if (at->kind != Kind::string) fail_input(where + ": \"occurred_at\" must be a string");
        try {
            line.occurred_at = factstr::json::parse_rfc3339(at->string);
        } catch (const factstr::InvalidInput& e) {
            fail_input(where + ": \"occurred_at\": " + e.what());
        }
    }
    return line;
}

// Checks the order and batch structure of consecutive lines.
class Checker {
  public:
    void add(const Line& line, const std::string& where) {
        ++facts_;
        if (facts_ == 1) numbered_ = line.sequence_number.has_value();
        if (numbered_ != line.sequence_number.has_value())
            fail_input(where + ": \"sequence_number\" must be on every line or on none");
        if (line.batch_last && !line.sequence_number)
            fail_input(where + ": \"batch_last\" needs a \"sequence_number\"");
        if (line.sequence_number) {
            const auto seq = *line.sequence_number;
            if (facts_ == 1) {
                first_ = seq;
            } else if (seq != previous_ + 1) {
                fail_input(
                    fmt::format("{}: sequence_number {} does not follow {} (a log has no holes)",
                                where, seq, previous_));
            }
            previous_ = seq;
            if (line.batch_last) {
                if (*line.batch_last < seq)
                    fail_input(fmt::format("{}: batch_last {} is before sequence_number {}", where,
                                           *line.batch_last, seq));
                if (open_batch_ && *open_batch_ != *line.batch_last)
                    fail_input(
                        fmt::format("{}: batch_last {} while the batch ending at {} is not "
                                    "complete",
                                    where, *line.batch_last, *open_batch_));
                open_batch_ = *line.batch_last == seq ? std::nullopt : line.batch_last;
            } else if (open_batch_) {
                fail_input(
                    fmt::format("{}: no batch_last while the batch ending at {} is not complete",
                                where, *open_batch_));
            }
        }
        if (!line.batch_last || *line.batch_last == line.sequence_number) ++batches_;
    }
    void finish(const std::string& source) const {
        if (open_batch_)
            fail_input(fmt::format("{}: the input ends inside the batch ending at {}", source,
                                   *open_batch_));
        if (facts_ == 0) fail_input(source + ": no facts to import");
    }
    std::uint64_t facts() const { return facts_; }
    std::uint64_t batches() const { return batches_; }
    std::optional<std::uint64_t> first() const {
        return numbered_ ? std::optional<std::uint64_t>(first_) : std::nullopt;
    }

  private:
    std::uint64_t facts_ = 0, batches_ = 0, first_ = 0, previous_ = 0;
    bool numbered_ = false;
    std::optional<std::uint64_t> open_batch_;
};

// Removes the spool file of stdin.
struct TempFile {
    std::string path;
    ~TempFile() {
        if (!path.empty()) std::remove(path.c_str());
    }
};

int run(const ImportOptions& options, const Globals& globals) {
    // Pass 1: validate everything before the store is touched (stdin is spooled so that it
    // can be read again).
    std::string path = options.input;
    const std::string source = options.input == "-" ? std::string("stdin") : options.input;
    TempFile spool;
    Checker checker;
    {
        std::ifstream file;
        std::istream* in = &std::cin;
        std::ofstream copy;
        if (options.input != "-") {
            file.open(options.input, std::ios::binary);
            if (!file) fail_input(fmt::format("cannot read '{}'", options.input));
            in = &file;
        } else {
            const char* tmpdir = std::getenv("TMPDIR");
            std::string pattern =
                std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/factstr-import-XXXXXX";
            const int fd = ::mkstemp(pattern.data());
            if (fd < 0) fail_store("cannot create a temporary file for stdin in " + pattern);
            ::close(fd);
            spool.path = path = pattern;
            copy.open(path, std::ios::binary | std::ios::trunc);
        }
        std::uint64_t total = 0;
        if (options.input != "-") {
            std::error_code ec;
            total = std::filesystem::file_size(options.input, ec);
        }
        Progress progress("checking ", total, "facts");
        LineReader reader(*in, source);
        std::string text;
        std::uint64_t bytes = 0;
        while (reader.next(text)) {
            checker.add(parse_fact(text, reader.where()), reader.where());
            bytes += text.size() + 1;
            if (copy.is_open()) copy << text << '\n';
            progress.update(bytes, checker.facts());
        }
        progress.finish();
        checker.finish(source);
        if (copy.is_open()) {
            copy.close();
            if (!copy) fail_store("cannot write the temporary copy of stdin " + path);
        }
    }
    const bool preserve = !options.append;
    if (preserve && checker.first() && *checker.first() != 1)
        fail_input(
            fmt::format("{}: the facts start at sequence number {}, not 1; an empty store "
                        "would renumber them: use --append to accept new numbers",
                        source, *checker.first()));

    // The store is opened only now: bad input leaves no trace, not even a new file.
    factstr::Store store = open_store(globals);
    const factstr::SequenceNumber start_head = store.head();
    if (start_head != 0 && !options.append)
        fail_input(
            fmt::format("the store is not empty (head {}); import needs an empty store to "
                        "keep sequence numbers, or --append to add the facts after {} "
                        "with new sequence numbers",
                        start_head, start_head));

    // Pass 2: append batch by batch.
    std::ifstream in(path, std::ios::binary);
    if (!in) fail_store("cannot read '" + path + "' again");
    std::uint64_t total = 0;
    {
        std::error_code ec;
        total = std::filesystem::file_size(path, ec);
    }
    Progress progress("importing", total, "facts");
    LineReader reader(in, source);
    std::string text;
    std::vector<factstr::EventRecord> batch;
    std::uint64_t bytes = 0, facts = 0, batches = 0;
    factstr::SequenceNumber first = 0, last = 0;
    auto flush = [&] {
        const auto expected_first = start_head + facts + 1;
        const auto count = batch.size();
        factstr::AppendResult result;
        try {
            // Keeping numbers: the batch must land exactly where the export had it.
            result = store.append_recorded(std::move(batch),
                                           preserve ? std::optional(expected_first) : std::nullopt);
        } catch (const factstr::InvalidInput& e) {
            fail_store(
                fmt::format("another writer appended during the import: {} ({} facts were "
                            "imported)",
                            e.what(), facts));
        } catch (const factstr::StoreError& e) {
            fail_store(fmt::format("{} ({} of {} facts were imported, up to sequence number {})",
                                   e.what(), facts, checker.facts(), last));
        }
        batch.clear();
        if (result.first_sequence_number != expected_first)
            fail_store(
                fmt::format("another writer appended during the import: batch got "
                            "sequence number {}, expected {}; {} facts were imported",
                            result.first_sequence_number, expected_first, facts + count));
        if (batches == 0) first = result.first_sequence_number;
        last = result.last_sequence_number;
        facts += count;
        ++batches;
        progress.update(bytes, facts);
    };
    while (reader.next(text)) {
        Line line = parse_fact(text, reader.where());
        bytes += text.size() + 1;
        const bool ends_batch = !line.batch_last || *line.batch_last == line.sequence_number;
        factstr::EventRecord record;
        record.event_type = std::move(line.event_type);
        record.payload = std::move(line.payload);
        // Lines without occurred_at get the time of import.
        record.occurred_at =
            line.occurred_at.value_or(std::chrono::time_point_cast<std::chrono::microseconds>(
                std::chrono::system_clock::now()));
        batch.push_back(std::move(record));
        if (ends_batch) flush();
    }
    if (!batch.empty()) flush();
    progress.finish();

    const std::string summary = fmt::format(
        "imported {} facts in {} batches as sequence numbers {}..{} ({}); occurred_at kept\n",
        facts, batches, first, last,
        preserve ? "numbers and batch boundaries kept"
                 : "numbers reassigned after the existing facts, batch boundaries kept");
    write_stdout(summary);
    return exit_ok;
}

}  // namespace

Command add_import(CLI::App& root, const Globals& globals) {
    auto options = std::make_shared<ImportOptions>();
    CLI::App* app = root.add_subcommand(
        "import",
        "Load an NDJSON export into an EMPTY store, keeping sequence numbers and batch "
        "boundaries (--append: add to a non-empty store with new numbers)");
    app->add_option("input", options->input, "NDJSON file (default '-': stdin)");
    app->add_flag("--append", options->append,
                  "Allow a non-empty store: the facts are appended after its head, so their "
                  "sequence numbers are reassigned (order and batch boundaries are kept)");
    app->footer(R"(Input: the lines of factstr export. "event_type" and "payload" are required;
"sequence_number" must be consecutive (starting at 1 for an empty store); "batch_last"
groups lines into one append (lines without it are one batch each). Every line is
validated before anything is written; an error names the line.
occurred_at is kept (lines without it get the time of import).)");
    return {app, [options, &globals] { return run(*options, globals); }};
}

}  // namespace fcli
