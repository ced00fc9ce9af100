// factstr projections: the projections recorded in a store (list, status), their derived
// tables (show), running a projector worker (run) and rebuilding a changed declaration
// (rebuild). DESIGN.md §5, §6. This file defines the subcommands and their options; they run
// in cmd_projections_read.cpp and cmd_projections_write.cpp.
#include <memory>

#include <CLI/CLI.hpp>

#include "cmd_projections.hpp"

namespace fcli {

Command add_projections(CLI::App& root, const Globals& globals) {
    using namespace projections_subcommand;
    auto options = std::make_shared<ProjectionsOptions>();
    CLI::App* app = root.add_subcommand(
        "projections",
        "Projections (derived tables): list, status, show a table, run a worker, rebuild");
    app->require_subcommand(1);
    app->fallthrough();

    CLI::App* list = app->add_subcommand("list", "The declarations recorded in the store");
    list->add_flag("--json", options->json, "One JSON array (with the canonical declarations)X");
    list->footer(R"X(Output when piped: "NAME<TAB>FINGERPRINT<TAB>TABLES" per projection, sorted by
name; TABLES is "table(column,…)" separated by spaces.)X");

    CLI::App* status =
        app->add_subcommand("status", "Per projection: state, checkpoint, head, lag, owner, error");
    status->add_flag("--json", options->json, "One JSON array");
    status->footer(R"X(States: running, caught_up, failed, rebuilding, stopped (no worker holds it).
Output when piped: NAME STATE CHECKPOINT HEAD LAG_FACTS LAG_MS OWNER ERROR_POSITION ERROR,
tab-separated, '-' for none, sorted by name.
Exit code 5 when any projection is failed (after printing), else 0.)X");

    CLI::App* show = app->add_subcommand(
        "show", "Print a derived table's rows (a projection's name or <projection>_<column>)");
    show->add_option("table", options->table, "The derived table")->required();
    show->add_flag("--json", options->json, "One JSON array of row objects");
    show->footer(R"X(Output when piped: a header line of column names, then one tab-separated line
per row ordered by the key columns; NULL for no value.
Works for every backend (the memory store has no SQL; its tables live in this process).)X");

    CLI::App* run = app->add_subcommand(
        "run", "Run a projector worker for the declarations in FILE(s) until Ctrl-C");
    run->add_option("files", options->files,
                    "JSON files with one projection declaration or an array of them ('-': stdin)")
        ->required();
    run->add_option("--lease-ms", options->lease_ms,
                    "Lease length: another worker takes a projection over when this one stops "
                    "renewing for this long (default 10000)X");
    run->add_option("--worker-id", options->worker_id,
                    "Name of this worker in leases and status (default host:pid:random)X");
    run->add_flag("--until-caught-up", options->until_caught_up,
                  "Exit once every projection has applied the log up to the head at start");
    run->add_option("--timeout-ms", options->timeout_ms,
                    "With --until-caught-up: give up (exit 4) after this long (default: never)X");
    run->add_option("--report-ms", options->report_ms,
                    "Print a status line per projection to stderr this often (default 10000; "
                    "0: only failures)X");
    run->footer(R"X(Several workers (processes, hosts) may run the same declarations: leases give
each projection to one of them at a time. On SIGINT/SIGTERM the worker stops, releases its
leases and exits 0. Messages go to stderr.
Exit codes: 2 an invalid declaration (named by file and place); 3 the store holds another
declaration under that name (run 'factstr projections rebuild FILE'); 5 with
--until-caught-up, a projection failed on a fact (its position is printed).
Note: the memory store lives in this process only.)X");

    CLI::App* rebuild = app->add_subcommand(
        "rebuild", "Rebuild projections from the log with the declarations in FILE(s)");
    rebuild
        ->add_option("files", options->files,
                     "JSON files with one projection declaration or an array of them")
        ->required();
    rebuild->footer(
        R"X(Builds fresh tables from the whole log while the old version keeps serving, then
switches over atomically; a worker running the old declaration stops at the switch. Start
workers with the new declaration afterwards ('factstr projections run'). A projection not
recorded yet is only registered. Exit 5 when a fact cannot be applied (old data kept).)X");

    for (CLI::App* sub : {list, status, show, run, rebuild})
        sub->fallthrough();
    app->footer(R"X(Examples:
  factstr projections run accounts.json              # a worker, until Ctrl-C
  factstr projections run --until-caught-up accounts.json
  factstr projections status
  factstr projections show accounts --json
  factstr projections rebuild accounts.json          # after changing the declaration)X");

    return {app, [=, &globals]() -> int {
                if (list->parsed()) return run_list(*options, globals);
                if (status->parsed()) return run_status(*options, globals);
                if (show->parsed()) return run_show(*options, globals);
                if (run->parsed()) return run_run(*options, globals);
                if (rebuild->parsed()) return run_rebuild(*options, globals);
                fail_input("choose one of list, status, show, run, rebuild");
            }};
}

}  // namespace fcli
