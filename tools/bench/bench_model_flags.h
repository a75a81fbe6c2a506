// The model flags of the benchmark programs (--model, --dtype, --threads, --device), from
// the one definition the worker uses (ModelSettings), with benchmark defaults.
#pragma once

#include <memory>

#include <CLI/CLI.hpp>

#include "common/status.h"
#include "worker/model/model_loader.h"

namespace strata::bench {

struct BenchModelFlags {
  ModelSettings settings{.model = "builtin:llama-110m", .dtype = "bf16"};

  // A CPU-only benchmark leaves --device out (then the model loads on the CPU).
  void add_to(CLI::App& app, bool offer_device = true);
  // The load options the flags stand for; errors name the flag.
  StatusOr<ModelLoadOptions> load_options(const Topology& topology = {}) const;
  // Sets the CPU kernel threads and loads this rank's shard; errors name the flag.
  StatusOr<std::unique_ptr<LoadedModel>> load(const Topology& topology = {}) const;
};

}  // namespace strata::bench
