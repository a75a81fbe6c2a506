// `strata models`: the builtin presets and their shapes.
#include <iostream>

#include "tools/strata/commands.h"
#include "worker/model/builtin_models.h"

namespace strata::cli {

CommandRunner add_models_command(CLI::App& app) {
  app.add_subcommand("models", "List the builtin: models");
  return [] {
    for (const auto& preset : builtin_model_presets()) {
      std::cout << "builtin:" << preset.name << "\t" << preset.description << "\n    "
                << preset.config.summary() << "\n";
    }
    return 0;
  };
}

}  // namespace strata::cli
