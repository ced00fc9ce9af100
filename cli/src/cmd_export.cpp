// factstr export: the whole log as NDJSON, one fact per line, paged with Store::for_each_batch so
// the log never sits in memory. Each line carries "batch_last", the last sequence number of the
// append the fact belongs to, so that import can rebuild the batch boundaries.
#include <cstdio>
#include <memory>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "common.hpp"
#include "progress.hpp"

namespace fcli {
namespace {

struct ExportOptions {
    std::string output = "-";
    std::size_t page = 10000;
};

int run(const ExportOptions& options, const Globals& globals) {
    if (options.page == 0) fail_input("--page must be at least 1");
    factstr::Store store = open_store(globals);
    const factstr::SequenceNumber head = store.head();

    std::FILE* out = stdout;
    std::string temp;
    if (options.output != "-") {
        temp = options.output + ".partial";
        out = std::fopen(temp.c_str(), "wb");
        if (!out) fail_input(fmt::format("cannot write '{}'", temp));
    }
    static char buffer[1 << 16];
    std::setvbuf(out, buffer, _IOFBF, sizeof buffer);

    // A progress bar only when it does not mix with the exported lines on the terminal.
    Progress progress("exporting", head, "facts");
    const bool show_progress = options.output != "-" || !stdout_is_tty();
    std::uint64_t facts = 0, batches = 0;
    std::string line;
    store.for_each_batch(0, head, {}, options.page, [&](const factstr::CommittedBatch& batch) {
        ++batches;
        for (const auto& record : batch.records) {
            line = factstr::json::record_to_json(record);
            line.pop_back();  // the closing brace
            line += fmt::format(",\"batch_last\":{}}}\n", batch.last_sequence_number);
            if (std::fwrite(line.data(), 1, line.size(), out) != line.size())
                fail_store(fmt::format("writing '{}' failed", options.output));
            ++facts;
        }
        if (show_progress) progress.update(batch.last_sequence_number);
        return true;
    });
    if (show_progress) progress.finish();
    if (std::fflush(out) != 0) fail_store(fmt::format("writing '{}' failed", options.output));
    if (out != stdout) {
        std::fclose(out);
        if (std::rename(temp.c_str(), options.output.c_str()) != 0)
            fail_store(fmt::format("cannot rename '{}' to '{}'", temp, options.output));
    }
    if (options.output != "-" || !stdout_is_tty())
        std::fprintf(stderr, "exported %llu facts in %llu batches (head %llu)\n",
                     static_cast<unsigned long long>(facts),
                     static_cast<unsigned long long>(batches),
                     static_cast<unsigned long long>(head));
    return exit_ok;
}

}  // namespace

Command add_export(CLI::App& root, const Globals& globals) {
    auto options = std::make_shared<ExportOptions>();
    CLI::App* app = root.add_subcommand(
        "export", "Write the whole log as NDJSON (one fact per line, with its batch boundary)");
    app->add_option("--output,-o", options->output,
                    "File to write (default '-': stdout); written as FILE.partial, then renamed");
    app->add_option("--page", options->page, "Facts read per page (default 10000)");
    app->footer(R"(Each line is a record with the field "batch_last" added: the last sequence number
of the append (batch) the fact was committed in, e.g.
  {"sequence_number":1,"occurred_at":"2026-01-02T03:04:05.123456Z","event_type":"A","payload":{},"batch_last":2}
The export is a snapshot up to the head at its start. Progress on stderr when it is a
terminal (and stdout is not).)");
    return {app, [options, &globals] { return run(*options, globals); }};
}

}  // namespace fcli
