// factstr append: facts from flags or NDJSON on stdin, as one batch, in batches of N, or
// conditionally (append_if).
#include <fstream>
#include <iostream>
#include <memory>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "common.hpp"

namespace fcli {
namespace {

struct AppendOptions {
    std::vector<std::string> types;
    std::vector<std::string> payloads;
    std::string input = "-";
    std::size_t batch_size = 0;
    std::string if_context;
    std::string expect;
    bool json = false;
};

using Kind = factstr::json::Value::Kind;

// Reads and validates every line before anything is written.
std::vector<factstr::NewEvent> read_events(std::istream& in, const std::string& source) {
    std::vector<factstr::NewEvent> events;
    LineReader reader(in, source);
    std::string line;
    while (reader.next(line)) {
        const std::string where = reader.where();
        factstr::json::Value value = parse_line(line, where);
        if (value.kind != Kind::object)
            fail_input(where + ": expected a JSON object with \"event_type\" and \"payload\"");
        const auto* type = member(value, "event_type");
        if (!type || type->kind != Kind::string || type->string.empty())
            fail_input(where + ": \"event_type\" must be a non-empty string");
        // The payload's own text, as written (the store compacts it): numbers keep every
        // digit they were given.
        std::optional<std::string> payload = factstr::json::member_text(line, "payload", where);
        if (!payload) fail_input(where + ": \"payload\" is missing");
        events.push_back({type->string, std::move(*payload)});
    }
    if (events.empty()) fail_input(source + ": no facts to append (expected NDJSON lines)");
    return events;
}

void print_range(const factstr::AppendResult& result, bool as_json, bool color) {
    if (as_json) {
        write_stdout(fmt::format(
            "{{\"first_sequence_number\":{},\"last_sequence_number\":{},\"committed_count\":{}}}\n",
            result.first_sequence_number, result.last_sequence_number, result.committed_count));
    } else {
        (void)color;
        write_stdout(fmt::format("appended {} fact{}: {}..{}\n", result.committed_count,
                                 result.committed_count == 1 ? "" : "s",
                                 result.first_sequence_number, result.last_sequence_number));
    }
}

int run(const AppendOptions& options, const Globals& globals) {
    // 1. Collect and validate the input.
    std::vector<factstr::NewEvent> events;
    if (!options.types.empty()) {
        if (!options.payloads.empty() && options.payloads.size() != options.types.size())
            fail_input(
                fmt::format("got {} --type but {} --payload; give one --payload per --type "
                            "(or none for empty payloads)",
                            options.types.size(), options.payloads.size()));
        for (std::size_t i = 0; i < options.types.size(); ++i) {
            if (options.types[i].empty()) fail_input(fmt::format("--type #{} is empty", i + 1));
            std::string payload = options.payloads.empty() ? "{}" : options.payloads[i];
            (void)parse_line(payload, fmt::format("--payload #{}", i + 1));  // names a bad one
            events.push_back({options.types[i], std::move(payload)});
        }
    } else if (!options.payloads.empty()) {
        fail_input("--payload needs a --type");
    } else if (options.input == "-") {
        events = read_events(std::cin, "stdin");
    } else {
        std::ifstream file(options.input);
        if (!file) fail_input(fmt::format("cannot read '{}'", options.input));
        events = read_events(file, options.input);
    }

    const bool conditional = !options.if_context.empty() || !options.expect.empty();
    std::optional<factstr::EventQuery> context;
    std::optional<factstr::SequenceNumber> expected;
    if (conditional) {
        if (options.if_context.empty() || options.expect.empty())
            fail_input("--if-context and --expect go together");
        if (options.batch_size != 0 && options.batch_size < events.size())
            fail_input("a conditional append is one batch; drop --batch-size");
        FilterFlags flags;
        flags.query_json = options.if_context;
        context = build_query(flags);
        expected = parse_version(options.expect, "--expect");
    }

    const bool as_json = options.json || !stdout_is_tty();
    factstr::Store store = open_store(globals);

    // 2. Write.
    if (conditional) {
        auto outcome = store.append_if(std::move(events), *context, expected);
        if (const auto* conflict = outcome.conflict()) {
            throw CliError(exit_conflict,
                           fmt::format("conflict: expected context version {}, actual {}; "
                                       "nothing was written",
                                       version_text(conflict->expected_context_version),
                                       version_text(conflict->actual_context_version)));
        }
        print_range(*outcome.append_result(), as_json, use_color(globals));
        return exit_ok;
    }
    const std::size_t batch = options.batch_size == 0 ? events.size() : options.batch_size;
    std::size_t done = 0;
    while (done < events.size()) {
        const std::size_t n = std::min(batch, events.size() - done);
        std::vector<factstr::NewEvent> part(std::make_move_iterator(events.begin() + done),
                                            std::make_move_iterator(events.begin() + done + n));
        try {
            print_range(store.append(std::move(part)), as_json, use_color(globals));
        } catch (const factstr::StoreError& e) {
            if (done == 0) throw;
            fail_store(fmt::format("{} (the first {} facts were committed, the rest were not)",
                                   e.what(), done));
        }
        done += n;
    }
    return exit_ok;
}

}  // namespace

Command add_append(CLI::App& root, const Globals& globals) {
    auto options = std::make_shared<AppendOptions>();
    CLI::App* app = root.add_subcommand(
        "append",
        "Append facts: from --type/--payload, or NDJSON on stdin (one "
        "{\"event_type\":…,\"payload\":…} object per line). Prints the committed range.");
    app->add_option("--type,-t", options->types,
                    "Event type of a fact to append (repeat for several facts)");
    app->add_option("--payload,-p", options->payloads,
                    "JSON payload of the fact (one per --type, in order; default {})");
    app->add_option("--input,-i", options->input, "NDJSON file to read instead of stdin ('-')");
    app->add_option("--batch-size,-b", options->batch_size,
                    "Append in batches of N facts (default 0: all facts as one batch)");
    app->add_option("--if-context", options->if_context,
                    "Conditional append: the context query as JSON (see factstr query --help)");
    app->add_option("--expect", options->expect,
                    "Conditional append: the expected context version (a number or 'none'); "
                    "exit code 3 on conflict");
    app->add_flag("--json", options->json,
                  "Print the range as JSON (the default when stdout is not a terminal)");
    app->footer(R"(Output: one line per committed batch; on a terminal "appended 3 facts: 4..6",
otherwise {"first_sequence_number":4,"last_sequence_number":6,"committed_count":3}.
Every input line is validated before anything is written.

Examples:
  factstr append --type AccountOpened --payload '{"accountId":"a1"}'
  printf '%s\n' '{"event_type":"Deposited","payload":{"accountId":"a1","amount":5}}' | factstr append
  factstr append -t Withdrawn -p '{"accountId":"a1","amount":3}' \
    --if-context '{"filters":[{"payload_predicates":[{"accountId":"a1"}]}]}' --expect 2)");
    return {app, [options, &globals] { return run(*options, globals); }};
}

}  // namespace fcli
