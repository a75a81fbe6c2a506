// Runs a loaded model over a token sequence and compares logits with a reference: what the
// loader tests of every format share.
#pragma once

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "worker/model/llama_model.h"
#include "worker/model/model_loader.h"

namespace strata {

// Logits at every position, one token per step (the decode path) and, separately, the
// whole sequence as one prefill chunk (the prefill path's last row).
struct RunResult {
  std::vector<std::vector<float>> per_position;
  std::vector<float> prefill_last;
};

inline RunResult run_all_positions(const LoadedModel& m, const std::vector<int32_t>& tokens) {
  RunResult r;
  const int n = static_cast<int>(tokens.size());
  const int block_size = 16, num_blocks = (n + block_size - 1) / block_size;
  std::vector<int32_t> table(num_blocks);
  for (int i = 0; i < num_blocks; ++i) table[i] = num_blocks - 1 - i;
  {
    LlamaModel forward(m.config, m.weights);
    KvCache cache(m.config, block_size, num_blocks, DType::kF32);
    std::vector<float> logits;
    for (int pos = 0; pos < n; ++pos) {
      ForwardBatch batch{{tokens[pos]}, {{pos, 1, table, true}}};
      forward.forward(batch, cache, logits);
      r.per_position.push_back(logits);
    }
  }
  LlamaModel forward(m.config, m.weights);
  KvCache cache(m.config, block_size, num_blocks, DType::kF32);
  ForwardBatch batch{tokens, {{0, n, table, true}}};
  forward.forward(batch, cache, r.prefill_last);
  return r;
}

inline std::unique_ptr<LoadedModel> load_or_fail(const std::filesystem::path& path,
                                          std::optional<DType> dtype = std::nullopt,
                                          std::optional<Quantization> quantization = std::nullopt) {
  auto loaded = load_model(path.string(), {.dtype = dtype, .quantization = quantization});
  EXPECT_TRUE(loaded.ok()) << loaded.status().to_string();
  return loaded.ok() ? std::move(loaded).value() : nullptr;
}

inline double relative_error(const std::vector<float>& got, const nlohmann::json& want) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double w = want[i].get<double>();
    diff = std::max(diff, std::abs(got[i] - w));
    scale = std::max(scale, std::abs(w));
  }
  return diff / scale;
}

}  // namespace strata
