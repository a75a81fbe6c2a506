// Subcommands of the `strata` binary. Each registers its flags (declared once, with help
// and default) on a CLI11 subcommand and returns the function that runs it.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace strata::cli {

using CommandRunner = std::function<int()>;

CommandRunner add_bench_command(CLI::App& app);
CommandRunner add_generate_command(CLI::App& app);
CommandRunner add_models_command(CLI::App& app);
CommandRunner add_roofline_command(CLI::App& app);
CommandRunner add_serve_command(CLI::App& app);
CommandRunner add_simulate_command(CLI::App& app);

// A configs/hardware directory given relative to the working directory, or else found
// beside the source tree of this binary.
std::string resolve_hardware_dir(const std::string& dir);

}  // namespace strata::cli
