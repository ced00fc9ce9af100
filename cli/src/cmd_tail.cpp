// factstr tail: the last facts, then (with -f) every fact as it is committed, until SIGINT or
// SIGTERM. Either from a position (--from N, -n N) with a gap-free hand-over from the log to
// a live stream, or as a durable stream (--durable NAME) whose cursor advances as facts are
// printed.
#include <chrono>
#include <memory>
#include <thread>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "common.hpp"

namespace fcli {
namespace {

struct TailOptions {
    FilterFlags filters;
    std::optional<factstr::SequenceNumber> from;
    std::size_t last = 10;
    bool follow = false;
    std::string durable;
    bool ndjson = false;
    bool plain = false;
};

struct Printer {
    RecordFormat format;
    bool color;
    void print(const std::vector<factstr::EventRecord>& records) const {
        std::string out;
        for (const auto& record : records)
            out += format_record(record, format, color, 18);
        if (!out.empty()) write_stdout(out);
    }
};

int run_durable(const TailOptions& options, const Globals& globals, const Printer& printer,
                const factstr::EventQuery& query, bool filtered) {
    if (options.from) fail_input("--from cannot be combined with --durable (the cursor decides)");
    if (options.durable.empty()) fail_input("--durable needs a name");
    if (options.follow) install_stop_signals();
    factstr::Store store = open_store(globals);
    // The handler prints; the cursor advances only after a batch was written out.
    auto handler = [printer](const factstr::Batch& batch) { printer.print(batch); };
    factstr::Subscription subscription =
        filtered ? store.stream_to_durable({options.durable}, query, handler)
                 : store.stream_all_durable({options.durable}, handler);
    if (options.follow) {
        while (!stop_requested() && subscription.active())
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (!stop_requested() && subscription.failure())
            fail_store("durable stream '" + options.durable +
                       "' stopped: " + *subscription.failure());
    }
    subscription.unsubscribe();
    store.close();
    return exit_ok;
}

int run(const TailOptions& options, const Globals& globals) {
    if (options.ndjson && options.plain) fail_input("choose one of --ndjson, --plain");
    const factstr::EventQuery query = build_query(options.filters);
    const bool filtered = query.filters.has_value();
    Printer printer{options.ndjson                        ? RecordFormat::ndjson
                    : (options.plain || !stdout_is_tty()) ? RecordFormat::plain
                                                          : RecordFormat::pretty,
                    use_color(globals)};
    if (!options.durable.empty()) return run_durable(options, globals, printer, query, filtered);

    if (options.follow) install_stop_signals();
    factstr::Store store = open_store(globals);
    const factstr::SequenceNumber head = store.head();
    const factstr::SequenceNumber position =
        options.from ? *options.from : (head > options.last ? head - options.last : 0);

    if (!options.follow) {
        store.for_each_batch(position, head, query, 1000,
                             [&](const factstr::CommittedBatch& batch) {
                                 printer.print(batch.records);
                                 return !stop_requested();
                             });
        store.close();
        return exit_ok;
    }
    // The store's replay-then-live stream: the log after `position`, then every commit, with
    // no gap and no duplicate at the hand-over.
    factstr::Subscription subscription =
        store.stream_pages(position, filtered ? std::optional(query) : std::nullopt, 1000,
                           [printer](const factstr::BatchPage& page, factstr::Completion done) {
                               for (const auto& batch : page.batches)
                                   printer.print(batch.records);
                               done.succeed();
                           });
    while (!stop_requested() && subscription.active())
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!stop_requested() && subscription.failure())
        fail_store("tail stopped: " + *subscription.failure());
    subscription.unsubscribe();
    store.close();
    return exit_ok;
}

}  // namespace

Command add_tail(CLI::App& root, const Globals& globals) {
    auto options = std::make_shared<TailOptions>();
    CLI::App* app = root.add_subcommand(
        "tail",
        "Print the last facts; with -f keep printing facts as they are committed "
        "(also by other processes) until Ctrl-C");
    add_filter_flags(*app, options->filters);
    app->add_flag("--follow,-f", options->follow,
                  "Keep following live until SIGINT/SIGTERM (then exit 0)");
    app->add_option("--from", options->from,
                    "Start after this sequence number (0 = the whole log) instead of -n");
    app->add_option("--lines,-n", options->last,
                    "Start N facts before the head (default 10; filters apply afterwards)");
    app->add_option("--durable,-d", options->durable,
                    "Read as the durable stream NAME: replay from its stored cursor, advance "
                    "the cursor as facts are printed (then follow with -f)");
    app->add_flag("--ndjson", options->ndjson, "One JSON record per line");
    app->add_flag("--plain", options->plain,
                  "Tab-separated lines (the default when stdout is not a terminal)");
    app->footer(R"(Without -f, prints the facts after the start position that are there and exits.
With -f, hands over from the log to the live stream without gap or duplicate.

Examples:
  factstr tail -f                       # the last 10 facts, then live
  factstr tail --from 0 --type Deposited
  factstr tail -f --durable audit       # resumes where 'audit' stopped last time)");
    return {app, [options, &globals] { return run(*options, globals); }};
}

}  // namespace fcli
