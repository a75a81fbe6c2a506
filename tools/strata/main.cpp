// strata: one binary, one subcommand per job (bench, generate, keygen, models, roofline, serve, simulate).
#include <iostream>
#include <map>

#include "tools/strata/commands.h"

namespace strata::cli {

int report_failure(std::string_view command, const Status& status) {
  std::cerr << "strata " << command << ": " << status.message() << "\n";
  return status.code() == StatusCode::kInternal ? 70 : 2;
}

}  // namespace strata::cli

int main(int argc, char** argv) {
  CLI::App app{"strata: LLM serving on CPUs and NVIDIA GPUs"};
  app.require_subcommand(1);
  std::map<CLI::App*, strata::cli::CommandRunner> runners;
  auto add = [&](strata::cli::CommandRunner (*adder)(CLI::App&)) {
    const size_t before = app.get_subcommands({}).size();
    strata::cli::CommandRunner runner = adder(app);
    runners[app.get_subcommands({}).at(before)] = std::move(runner);
  };
  add(strata::cli::add_bench_command);
  add(strata::cli::add_generate_command);
  add(strata::cli::add_keygen_command);
  add(strata::cli::add_models_command);
  add(strata::cli::add_roofline_command);
  add(strata::cli::add_serve_command);
  add(strata::cli::add_simulate_command);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (auto& [sub, run] : runners) {
    if (sub->parsed()) return run();
  }
  return 1;
}
