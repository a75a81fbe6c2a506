// Subcommands of the `strata` binary. Each registers its flags (declared once, with help
// and default) on a CLI11 subcommand and returns the function that runs it.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "common/status.h"

namespace strata::cli {

using CommandRunner = std::function<int()>;

CommandRunner add_bench_command(CLI::App& app);
CommandRunner add_generate_command(CLI::App& app);
CommandRunner add_keygen_command(CLI::App& app);
CommandRunner add_models_command(CLI::App& app);
CommandRunner add_roofline_command(CLI::App& app);
CommandRunner add_serve_command(CLI::App& app);
CommandRunner add_simulate_command(CLI::App& app);

// A configs/hardware directory given relative to the working directory, or else found
// beside the source tree of this binary.
std::string resolve_hardware_dir(const std::string& dir);

// Prints "strata <command>: <message>" to stderr and returns the exit code: 70 (EX_SOFTWARE)
// for an internal error, 2 for anything the user can fix.
int report_failure(std::string_view command, const Status& status);

}  // namespace strata::cli
