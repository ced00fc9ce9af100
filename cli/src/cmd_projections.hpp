// The `factstr projections` subcommands, shared by their files: the options CLI11 fills in
// (cmd_projections.cpp), the read-only subcommands list, status and show
// (cmd_projections_read.cpp) and the ones that write derived tables, run and rebuild
// (cmd_projections_write.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common.hpp"

namespace fcli::projections_subcommand {

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

// "-" for none.
inline std::string opt_text(const std::optional<std::string>& value) {
    return value ? *value : std::string("-");
}

// The subcommands; each returns its exit code (common.hpp) or throws CliError.
int run_list(const ProjectionsOptions& options, const Globals& globals);
int run_status(const ProjectionsOptions& options, const Globals& globals);
int run_show(const ProjectionsOptions& options, const Globals& globals);
int run_run(const ProjectionsOptions& options, const Globals& globals);
int run_rebuild(const ProjectionsOptions& options, const Globals& globals);

}  // namespace fcli::projections_subcommand
