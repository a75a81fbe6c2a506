// builtin: models — Llama shapes with deterministic pseudo-random weights, so strata runs
// and benchmarks with no files at all. Their tokenizer is the byte tokenizer
// ("builtin:bytes"); ids past its 259 entries decode to bytes (see the tokenizer).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "worker/model/model_config.h"

namespace strata {

struct BuiltinModelPreset {
  std::string name;         // after "builtin:"
  std::string description;
  ModelConfig config;
};

const std::vector<BuiltinModelPreset>& builtin_model_presets();
std::optional<ModelConfig> builtin_model_config(const std::string& name);
// The preset's config, or an error listing the presets.
StatusOr<ModelConfig> find_builtin_model(const std::string& name);
// Ok unless `model` is builtin:NAME with an unknown NAME, so `strata serve` can refuse it
// before any worker starts (common/model_path.h checks only the prefix).
Status check_builtin_model_path(const std::string& model);

}  // namespace strata
