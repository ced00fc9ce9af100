// factstr projections run and rebuild: a projector worker for declarations from files, and
// the rebuild of a changed declaration from the log.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "cmd_projections.hpp"

namespace fcli::projections_subcommand {
namespace {

namespace fp = factstr::projections;
using fp::ProjectionStatus;

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

std::string status_line(const ProjectionStatus& s) {
    std::string line =
        fmt::format("{} {} checkpoint {}/{} lag {} facts {} ms", s.name, fp::to_string(s.state),
                    s.checkpoint, s.head, s.lag_facts, s.lag_time.count());
    if (s.error)
        line += fmt::format(" error at #{}: {}",
                            s.error_position ? std::to_string(*s.error_position) : "?", *s.error);
    return line;
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

}  // namespace

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

}  // namespace fcli::projections_subcommand
