// builtin: models — Llama shapes with deterministic pseudo-random weights, so strata runs
// and benchmarks with no files at all. Their tokenizer is the byte tokenizer
// ("builtin:bytes"); ids past its 259 entries decode to bytes (see the tokenizer).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "worker/model/model_config.h"

namespace strata {

struct BuiltinModelPreset {
  std::string name;         // after "builtin:"
  std::string description;
  ModelConfig config;
};

const std::vector<BuiltinModelPreset>& builtin_model_presets();
std::optional<ModelConfig> builtin_model_config(const std::string& name);

}  // namespace strata
