// factstr projections: the projections recorded in a store (list, status), their derived
// tables (show), running a projector worker (run) and rebuilding a changed declaration
// (rebuild). DESIGN.md §5, §6.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/color.h>
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "common.hpp"

namespace fcli {
namespace {

namespace fp = factstr::projections;
using fp::ProjectionStatus;

struct ProjectionsOptions {
    bool json = false;
    std::vector<std::string> files;
    std::string table;
    std::string worker_id;
    std::int64_t lease_ms = 10000;
    std::int64_t report_ms = 10000;
    std::int64_t timeout_ms = 0;
    bool until_caught_up = false;
};

// Declarations from files: each holds one projection object or an array of them.
std::vector<fp::Projection> load_declarations(const std::vector<std::string>& files) {
    std::vector<fp::Projection> all;
    std::map<std::string, std::string> seen;  // name -> file
    for (const std::string& file : files) {
        std::string text;
        if (file == "-") {
            std::ostringstream buffer;
            buffer << std::cin.rdbuf();
            text = buffer.str();
        } else {
            std::ifstream in(file, std::ios::binary);
            if (!in) fail_input(fmt::format("{}: cannot read the file", file));
            std::ostringstream buffer;
            buffer << in.rdbuf();
            text = buffer.str();
        }
        std::vector<fp::Projection> parsed;
        try {
            parsed = fp::parse_projections(text);
        } catch (const factstr::InvalidInput& e) {
            fail_input(fmt::format("{}: invalid declaration: {}", file, e.what()));
        }
        for (auto& projection : parsed) {
            if (auto it = seen.find(projection.name); it != seen.end())
                fail_input(fmt::format("{}: projection '{}' is declared twice (also in {})", file,
                                       projection.name, it->second));
            seen[projection.name] = file;
            all.push_back(std::move(projection));
        }
    }
    if (all.empty()) fail_input("no projection declared in the given file(s)X");
    return all;
}

// The tables and columns a declaration creates (as the engine names them).
struct TableColumns {
    std::string name;
    std::vector<std::string> columns;
};
std::vector<TableColumns> tables_of(const fp::Projection& projection) {
    auto key_columns = [](const std::vector<fp::KeyField>& key) {
        std::vector<std::string> columns;
        for (const auto& field : key) {
            std::string column = field.column;
            if (column.empty()) {
                column = field.field;
                std::replace(column.begin(), column.end(), '.', '_');
            }
            columns.push_back(column);
        }
        return columns;
    };
    TableColumns main{projection.name, key_columns(projection.key)};
    std::vector<TableColumns> transforms;
    bool aggregates = false;
    for (const auto& c : projection.computations) {
        if (const auto* transform = std::get_if<fp::Transform>(&c.kind)) {
            TableColumns table{
                projection.name + "_" + c.column,
                key_columns(transform->key.empty() ? projection.key : transform->key)};
            for (const auto& column : transform->columns)
                table.columns.push_back(column.column.empty() ? column.field : column.column);
            transforms.push_back(std::move(table));
            continue;
        }
        aggregates = true;
        main.columns.push_back(c.column);
        if (std::holds_alternative<fp::Average>(c.kind)) {
            main.columns.push_back(c.column + "_sum");
            main.columns.push_back(c.column + "_count");
        } else if (std::holds_alternative<fp::Every>(c.kind) ||
                   std::holds_alternative<fp::Any>(c.kind)) {
            main.columns.push_back(c.column + "_matched");
            main.columns.push_back(c.column + "_satisfied");
        } else if (std::holds_alternative<fp::StateMachine>(c.kind)) {
            main.columns.push_back(c.column + "_ignored");
        }
    }
    std::vector<TableColumns> result;
    if (aggregates) result.push_back(std::move(main));
    for (auto& table : transforms)
        result.push_back(std::move(table));
    return result;
}

std::string json_quote(std::string_view text) {
    std::string out;
    factstr::json::append_quoted(out, text);
    return out;
}

std::string opt_text(const std::optional<std::string>& value) {
    return value ? *value : std::string("-");
}

int run_list(const ProjectionsOptions& options, const Globals& globals) {
    factstr::Store store = open_store(globals);
    auto declared = fp::declarations(store);
    std::sort(declared.begin(), declared.end());
    std::string out;
    if (options.json) out = "[";
    std::size_t name_w = 4;
    for (const auto& [name, declaration] : declared)
        name_w = std::max(name_w, name.size());
    const bool table = !options.json && stdout_is_tty();
    if (table && !declared.empty()) {
        std::string header =
            fmt::format("{:<{}}  {:<16}  {}", "NAME", name_w, "FINGERPRINT", "TABLES");
        out += use_color(globals) ? fmt::format("{}\n", fmt::styled(header, fmt::emphasis::bold))
                                  : header + "\n";
    }
    for (const auto& [name, declaration] : declared) {
        const fp::Projection projection = fp::parse_projection(declaration);
        const std::string fingerprint = fp::fingerprint(projection);
        const auto tables = tables_of(projection);
        if (options.json) {
            if (out.size() > 1) out += ',';
            out += "{\"name\":" + json_quote(name) + ",\"fingerprint\":" + json_quote(fingerprint) +
                   ",\"tables\":[";
            for (std::size_t t = 0; t < tables.size(); ++t) {
                if (t) out += ',';
                out += "{\"name\":" + json_quote(tables[t].name) + ",\"columns\":[";
                for (std::size_t c = 0; c < tables[t].columns.size(); ++c) {
                    if (c) out += ',';
                    out += json_quote(tables[t].columns[c]);
                }
                out += "]}";
            }
            out += "],\"declaration\":" + declaration + "}";
            continue;
        }
        std::string tables_text;
        for (const auto& t : tables) {
            if (!tables_text.empty()) tables_text += ' ';
            tables_text += fmt::format("{}({})", t.name, fmt::join(t.columns, ","));
        }
        if (table)
            out += fmt::format("{:<{}}  {:<16}  {}\n", name, name_w, fingerprint.substr(0, 16),
                               tables_text);
        else
            out += fmt::format("{}\t{}\t{}\n", name, fingerprint, tables_text);
    }
    if (options.json) out += "]\n";
    if (table && declared.empty()) out = "no projections recorded in this store\n";
    write_stdout(out);
    return exit_ok;
}

std::string status_json(const ProjectionStatus& s) {
    std::string out = "{\"name\":" + json_quote(s.name) +
                      ",\"state\":" + json_quote(fp::to_string(s.state)) +
                      fmt::format(",\"checkpoint\":{},\"head\":{},\"lag_facts\":{},\"lag_ms\":{}",
                                  s.checkpoint, s.head, s.lag_facts, s.lag_time.count());
    out += ",\"owner\":" + (s.owner ? json_quote(*s.owner) : std::string("null"));
    out += ",\"error\":" + (s.error ? json_quote(*s.error) : std::string("null"));
    out += ",\"error_position\":" +
           (s.error_position ? std::to_string(*s.error_position) : std::string("null"));
    out += ",\"rebuild_checkpoint\":" +
           (s.rebuild_checkpoint ? std::to_string(*s.rebuild_checkpoint) : std::string("null"));
    out += ",\"fingerprint\":" + json_quote(s.fingerprint) + "}";
    return out;
}

std::string status_line(const ProjectionStatus& s) {
    std::string line =
        fmt::format("{} {} checkpoint {}/{} lag {} facts {} ms", s.name, fp::to_string(s.state),
                    s.checkpoint, s.head, s.lag_facts, s.lag_time.count());
    if (s.error)
        line += fmt::format(" error at #{}: {}",
                            s.error_position ? std::to_string(*s.error_position) : "?", *s.error);
    return line;
}

int run_status(const ProjectionsOptions& options, const Globals& globals) {
    factstr::Store store = open_store(globals);
    auto statuses = fp::status(store);
    std::sort(statuses.begin(), statuses.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    bool failed = false;
    for (const auto& s : statuses)
        failed = failed || s.state == ProjectionStatus::State::failed;
    std::string out;
    if (options.json) {
        out = "[";
        for (const auto& s : statuses) {
            if (out.size() > 1) out += ',';
            out += status_json(s);
        }
        out += "]\n";
    } else if (!stdout_is_tty()) {
        for (const auto& s : statuses)
            out += fmt::format(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n", s.name, fp::to_string(s.state),
                s.checkpoint, s.head, s.lag_facts, s.lag_time.count(), opt_text(s.owner),
                s.error_position ? std::to_string(*s.error_position) : "-", opt_text(s.error));
    } else if (statuses.empty()) {
        out = fmt::format("no projections recorded in this store (head {})\n", store.head());
    } else {
        std::size_t name_w = 4, owner_w = 5;
        for (const auto& s : statuses) {
            name_w = std::max(name_w, s.name.size());
            owner_w = std::max(owner_w, opt_text(s.owner).size());
        }
        const bool color = use_color(globals);
        std::string header =
            fmt::format("{:<{}}  {:<10}  {:>10}  {:>10}  {:>8}  {:<{}}  {}", "NAME", name_w,
                        "STATE", "CHECKPOINT", "LAG", "LAG MS", "OWNER", owner_w, "ERROR");
        out +=
            color ? fmt::format("{}\n", fmt::styled(header, fmt::emphasis::bold)) : header + "\n";
        for (const auto& s : statuses) {
            std::string state = fmt::format("{:<10}", fp::to_string(s.state));
            if (color && s.state == ProjectionStatus::State::failed)
                state = fmt::format("{}", fmt::styled(state, fmt::fg(fmt::terminal_color::red)));
            std::string error =
                s.error ? fmt::format("at #{}: {}",
                                      s.error_position ? std::to_string(*s.error_position) : "?",
                                      *s.error)
                        : "";
            out += fmt::format("{:<{}}  {}  {:>10}  {:>10}  {:>8}  {:<{}}  {}\n", s.name, name_w,
                               state, s.checkpoint, s.lag_facts, s.lag_time.count(),
                               opt_text(s.owner), owner_w, error);
        }
        out += fmt::format("head {}\n", store.head());
    }
    write_stdout(out);
    return failed ? exit_projection_failed : exit_ok;
}

std::string cell_text(const fp::Cell& cell) {
    return std::visit(
        [](const auto& value) -> std::string {
            using T = std::decay_t<decltype(value)>;
            if constexpr (std::is_same_v<T, std::monostate>)
                return "NULL";
            else if constexpr (std::is_same_v<T, bool>)
                return value ? "true" : "false";
            else if constexpr (std::is_same_v<T, std::string>)
                return value;
            else
                return fmt::format("{}", value);
        },
        cell);
}

std::string cell_json(const fp::Cell& cell) {
    if (std::holds_alternative<std::monostate>(cell)) return "null";
    if (const auto* text = std::get_if<std::string>(&cell)) return json_quote(*text);
    if (const auto* real = std::get_if<double>(&cell))
        if (!std::isfinite(*real)) return "null";
    return cell_text(cell);
}

int run_show(const ProjectionsOptions& options, const Globals& globals) {
    factstr::Store store = open_store(globals);
    fp::Engine engine(store);
    const fp::Table table = engine.read(options.table);
    std::string out;
    if (options.json) {
        out = "[";
        for (const auto& row : table.rows) {
            if (out.size() > 1) out += ',';
            out += '{';
            for (std::size_t c = 0; c < table.columns.size(); ++c)
                out += (c ? "," : "") + json_quote(table.columns[c]) + ":" + cell_json(row[c]);
            out += '}';
        }
        out += "]\n";
    } else if (!stdout_is_tty()) {
        out += fmt::format("{}\n", fmt::join(table.columns, "\t"));
        for (const auto& row : table.rows) {
            std::vector<std::string> cells;
            for (const auto& cell : row)
                cells.push_back(cell_text(cell));
            out += fmt::format("{}\n", fmt::join(cells, "\t"));
        }
    } else {
        std::vector<std::size_t> widths;
        for (const auto& column : table.columns)
            widths.push_back(column.size());
        std::vector<std::vector<std::string>> texts;
        for (const auto& row : table.rows) {
            texts.emplace_back();
            for (std::size_t c = 0; c < row.size(); ++c) {
                texts.back().push_back(cell_text(row[c]));
                widths[c] = std::max(widths[c], texts.back().back().size());
            }
        }
        auto line = [&](const std::vector<std::string>& cells) {
            std::string text;
            for (std::size_t c = 0; c < cells.size(); ++c)
                text += fmt::format("{}{:<{}}", c ? "  " : "", cells[c], widths[c]);
            while (!text.empty() && text.back() == ' ')
                text.pop_back();
            return text;
        };
        const std::string header = line(table.columns);
        out += use_color(globals) ? fmt::format("{}\n", fmt::styled(header, fmt::emphasis::bold))
                                  : header + "\n";
        for (const auto& row : texts)
            out += line(row) + "\n";
        out += fmt::format("({} row{})\n", table.rows.size(), table.rows.size() == 1 ? "" : "s");
    }
    write_stdout(out);
    return exit_ok;
}

// Adds the declarations to an engine, turning a changed declaration into exit 3 with advice.
void add_all(fp::Engine& engine, const std::vector<fp::Projection>& projections,
             const std::vector<std::string>& files) {
    for (const auto& projection : projections) {
        try {
            engine.add(projection);
        } catch (const factstr::StoreError& e) {
            if (e.code() != factstr::ErrorCode::declaration_changed) throw;
            throw CliError(exit_conflict,
                           fmt::format("{} — the store holds derived data of another declaration "
                                       "of '{}'; run 'factstr projections rebuild {}' to rebuild "
                                       "it from the log with this declaration",
                                       e.what(), projection.name, fmt::join(files, " ")));
        } catch (const factstr::InvalidInput& e) {
            fail_input(fmt::format("invalid declaration: {}", e.what()));
        }
    }
}

int run_run(const ProjectionsOptions& options, const Globals& globals) {
    const auto projections = load_declarations(options.files);
    if (options.lease_ms < 30) fail_input("--lease-ms must be at least 30");
    install_stop_signals();
    factstr::Store store = open_store(globals);
    fp::EngineOptions engine_options;
    engine_options.worker_id = options.worker_id;
    engine_options.lease = std::chrono::milliseconds(options.lease_ms);
    fp::Engine engine(store, engine_options);
    add_all(engine, projections, options.files);
    std::set<std::string> names;
    for (const auto& projection : projections)
        names.insert(projection.name);
    auto ours = [&](std::vector<ProjectionStatus> all) {
        std::vector<ProjectionStatus> mine;
        for (auto& s : all)
            if (names.count(s.name)) mine.push_back(std::move(s));
        return mine;
    };

    const auto started = std::chrono::steady_clock::now();
    const factstr::SequenceNumber head = store.head();
    engine.start();
    std::fprintf(stderr, "factstr projections run: %zu projection(s) (%s) from head %llu%s\n",
                 names.size(), fmt::format("{}", fmt::join(names, ", ")).c_str(),
                 static_cast<unsigned long long>(head),
                 options.until_caught_up ? ", until caught up" : "; Ctrl-C to stop");

    std::set<std::string> reported;  // failures already printed
    auto report_failures = [&](const std::vector<ProjectionStatus>& statuses) {
        bool any = false;
        for (const auto& s : statuses) {
            if (s.state != ProjectionStatus::State::failed) continue;
            any = true;
            if (reported.insert(s.name).second)
                std::fprintf(stderr, "factstr projections run: projection '%s' failed at #%s: %s\n",
                             s.name.c_str(),
                             s.error_position ? std::to_string(*s.error_position).c_str() : "?",
                             opt_text(s.error).c_str());
        }
        return any;
    };

    int code = exit_ok;
    if (options.until_caught_up) {
        const auto deadline = options.timeout_ms > 0
                                  ? started + std::chrono::milliseconds(options.timeout_ms)
                                  : std::chrono::steady_clock::time_point::max();
        bool done = false;
        while (!done && !stop_requested()) {
            if (std::chrono::steady_clock::now() >= deadline) {
                code = exit_store;
                std::fprintf(stderr, "factstr projections run: not caught up after %lld ms\n",
                             static_cast<long long>(options.timeout_ms));
                break;
            }
            if (!engine.wait_caught_up(std::chrono::milliseconds(200))) continue;
            // Projections another live worker holds are not waited for by the engine: wait
            // for their checkpoints.
            done = true;
            for (const auto& s : ours(engine.status()))
                if (s.state != ProjectionStatus::State::failed && s.checkpoint < head) done = false;
            if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
        const auto statuses = ours(engine.status());
        if (report_failures(statuses) && code == exit_ok) code = exit_projection_failed;
        if (done) {
            const double seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
            for (const auto& s : statuses)
                std::fprintf(stderr, "factstr projections run: %s\n", status_line(s).c_str());
            std::fprintf(stderr, "factstr projections run: caught up with head %llu in %.3f s\n",
                         static_cast<unsigned long long>(head), seconds);
        }
    } else {
        auto last_report = std::chrono::steady_clock::now();
        while (!stop_requested()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            const auto now = std::chrono::steady_clock::now();
            const bool periodic = options.report_ms > 0 &&
                                  now - last_report >= std::chrono::milliseconds(options.report_ms);
            if (!periodic && now - last_report < std::chrono::seconds(1)) continue;
            const auto statuses = ours(engine.status());
            report_failures(statuses);
            if (periodic) {
                last_report = now;
                for (const auto& s : statuses)
                    std::fprintf(stderr, "factstr projections run: %s\n", status_line(s).c_str());
            }
        }
    }
    engine.stop();
    if (!options.until_caught_up || stop_requested())
        std::fprintf(stderr, "factstr projections run: stopped, leases released\n");
    store.close();
    return code;
}

int run_rebuild(const ProjectionsOptions& options, const Globals& globals) {
    const auto projections = load_declarations(options.files);
    factstr::Store store = open_store(globals);
    std::map<std::string, std::string> recorded;
    for (auto& [name, declaration] : fp::declarations(store))
        recorded[name] = fp::fingerprint(fp::parse_projection(declaration));
    for (const auto& projection : projections) {
        const std::string fingerprint = fp::fingerprint(projection);
        const auto it = recorded.find(projection.name);
        const auto started = std::chrono::steady_clock::now();
        fp::Engine engine(store);
        if (it == recorded.end()) {
            engine.rebuild(projection);
            write_stdout(
                fmt::format("{}: new projection registered (fingerprint {}); "
                            "'factstr projections run' builds it\n",
                            projection.name, fingerprint));
            continue;
        }
        std::fprintf(stderr,
                     "factstr projections rebuild: rebuilding '%s' from the log (head %llu)…\n",
                     projection.name.c_str(), static_cast<unsigned long long>(store.head()));
        try {
            engine.rebuild(projection);
        } catch (const factstr::StoreError& e) {
            if (e.code() == factstr::ErrorCode::projection_failed)
                throw CliError(exit_projection_failed, e.what());
            throw;
        }
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        factstr::SequenceNumber checkpoint = 0;
        for (const auto& s : fp::status(store))
            if (s.name == projection.name) checkpoint = s.checkpoint;
        write_stdout(fmt::format("{}: rebuilt through #{} in {:.3f} s (fingerprint {}{})\n",
                                 projection.name, checkpoint, seconds, fingerprint,
                                 it->second == fingerprint ? ", unchanged declaration" : ""));
    }
    store.close();
    return exit_ok;
}

}  // namespace

Command add_projections(CLI::App& root, const Globals& globals) {
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
