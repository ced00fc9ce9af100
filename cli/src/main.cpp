// `factstr` — inspect, tail, append to, export and import a factstr log from a terminal or
// a script. One binary, one subcommand per file (cmd_*.cpp).
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "common.hpp"

namespace {

constexpr const char* kFooter = R"(Store URLs:
  memory:                  a store that lives as long as this process
  sqlite:PATH              an SQLite file (created when missing), e.g. sqlite:./facts.db
                           options: ?sync=full|normal&busy_timeout_ms=N&poll_ms=N&index_batch=N
  postgres://…             PostgreSQL, e.g. postgres://user@host:5432/db (any libpq connection string)
  Taken from --store, else $FACTSTR_STORE, else sqlite:./facts.db.

Exit codes:
  0  success
  1  unexpected internal failure
  2  bad input: usage error, unknown subcommand, invalid JSON (named by line),
     invalid query, unknown store URL scheme; nothing was written
  3  conditional append conflict (append --if-context … --expect …); nothing was written.
     Also: projections run found another declaration recorded under a projection's name
     (run 'factstr projections rebuild FILE')
  4  store failure: cannot open or read the store (e.g. a file that is not a factstr
     database, which is left untouched), connection lost, storage error
  5  a projection failed on a fact: projections status (any failed projection),
     projections run --until-caught-up, projections rebuild

Output: tables and colors only when stdout is a terminal; plain, stable, tab-separated
or JSON output when piped. Progress bars only when stderr is a terminal.
Run 'factstr SUBCOMMAND --help' for each subcommand.)";

int report(const std::string& context, int code, const std::string& message) {
    std::fprintf(stderr, "%s: %s\n", context.c_str(), message.c_str());
    return code;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "factstr — the command for a factstr event log (append, query, tail, "
        "stats, streams, export, import, demo, projections)",
        "factstr"};
    app.footer(kFooter);
    app.require_subcommand(1);
    app.fallthrough();
    app.set_version_flag("--version", "factstr 0.1.0");

    fcli::Globals globals;
    if (const char* env = std::getenv("FACTSTR_STORE"); env && *env) globals.store_url = env;
    app.add_option("--store,-s", globals.store_url,
                   "Store URL: memory:, sqlite:PATH, postgres://… (env FACTSTR_STORE; default "
                   "sqlite:./facts.db)");
    app.add_flag("--no-color", globals.no_color, "Never use colors (also: NO_COLOR=1)");

    std::vector<fcli::Command> commands = {
        fcli::add_append(app, globals),      fcli::add_query(app, globals),
        fcli::add_tail(app, globals),        fcli::add_stats(app, globals),
        fcli::add_streams(app, globals),     fcli::add_export(app, globals),
        fcli::add_import(app, globals),      fcli::add_demo(app, globals),
        fcli::add_projections(app, globals),
    };

    // An unknown subcommand is reported by name rather than as "arguments not expected".
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--store" || arg == "-s") {
            ++i;
            continue;
        }
        if (arg.empty() || arg[0] == '-') continue;
        bool known = false;
        for (const auto& command : commands)
            known = known || command.app->check_name(arg);
        if (!known)
            return report(
                "factstr", fcli::exit_bad_input,
                fmt::format(
                    "unknown subcommand '{}' (known: append, query, tail, "
                    "stats, streams, export, import, demo, projections; see factstr --help)",
                    arg));
        break;
    }

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::string message = e.what();
        for (const auto& command : commands)
            if (command.app->parsed())
                return report("factstr " + command.app->get_name(), fcli::exit_bad_input,
                              message + " (see factstr " + command.app->get_name() + " --help)");
        return report("factstr", fcli::exit_bad_input, message + " (see factstr --help)");
    }

    for (const auto& command : commands) {
        if (!command.app->parsed()) continue;
        const std::string context = "factstr " + command.app->get_name();
        try {
            return command.run();
        } catch (const fcli::CliError& e) {
            return report(context, e.code(), e.what());
        } catch (const factstr::InvalidInput& e) {
            return report(context, fcli::exit_bad_input, e.what());
        } catch (const factstr::StoreError& e) {
            if (e.code() == factstr::ErrorCode::projection_failed)
                return report(context, fcli::exit_projection_failed, e.what());
            if (e.code() == factstr::ErrorCode::declaration_changed)
                return report(context, fcli::exit_conflict, e.what());
            return report(context, fcli::exit_store, e.what());
        } catch (const factstr::StreamError& e) {
            return report(context, fcli::exit_store, e.what());
        } catch (const std::exception& e) {
            return report(context, fcli::exit_internal, std::string("internal error: ") + e.what());
        }
    }
    return fcli::exit_internal;
}
