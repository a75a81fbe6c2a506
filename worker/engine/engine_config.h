// EngineConfig: the settings of one worker group's engine (scheduler, KV cache size, device).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/config_fields.h"
#include "common/status.h"
#include "kernels/tensor.h"
#include "worker/engine/scheduler.h"
#include "worker/engine/speculative/speculative_config.h"

namespace strata {

// The KV cache dtype `name` (--kv-cache-dtype) stands for with weights of `weights_dtype`
// ("auto": theirs), or nullopt for a name other than auto, bf16, fp16, fp32 and int8.
std::optional<DType> resolve_kv_cache_dtype(std::string_view name, DType weights_dtype);

struct EngineConfig {
  SchedulerConfig scheduler;
  SpeculativeConfig speculative;
  // KV cache size: kv_cache_bytes if > 0, else kv_cache_memory_fraction of the memory
  // available now (MemAvailable), capped to what max_num_seqs sequences of max_model_len
  // could ever use.
  int64_t kv_cache_bytes = 0;
  double kv_cache_memory_fraction = 0.3;
  // What the KV cache stores: "auto" (the weights' dtype), "bf16", "fp16", "fp32" or "int8"
  // (group-quantized, kernels/kv_cache_format.h: about twice bf16's blocks in the same bytes).
  std::string kv_cache_dtype = "auto";
  // With several ranks: a step running longer than this aborts the group (a rank died or hung).
  int64_t step_timeout_ms = 120000;
  // Where the forward pass runs: the device the model's weights were loaded onto
  // (ModelLoadOptions::device). On a GPU the KV cache takes what gpu_memory_fraction of its
  // memory leaves after the weights and the activation reserve (kv_cache_bytes still wins
  // when set); logits come back to the host, where sampling stays as on the CPU.
  Device device;
  double gpu_memory_fraction = 0.9;
  // GPU: decode-only steps replay CUDA graphs, one per batch-size bucket, captured when the
  // engine is created.
  bool cuda_graphs = true;

  // The settings a worker exposes (the device and the KV-cache size it sets from its own
  // --device and --kv-cache-mb).
  template <typename V>
  void visit_fields(V& v) {
    using config::Range;
    scheduler.visit_fields(v);
    speculative.visit_fields(v);
    v("kv_cache_dtype", kv_cache_dtype, "KV-cache element type: auto (the weights'), bf16, fp16, fp32 or int8");
    v("step_timeout_ms", step_timeout_ms, "multi-rank: a step longer than this aborts the group", Range{100, 86400000});
    v("gpu_memory_fraction", gpu_memory_fraction, "share of the GPU's memory for weights, activations and the KV cache", Range{0.01, 1.0});
    v("cuda_graphs", cuda_graphs, "GPU: replay decode steps from CUDA graphs (--no-cuda-graphs runs them eagerly)");
  }
  Status validate() const;
  Status validate_kv_cache_dtype() const;  // part of validate(), for callers before normalizing
  // The cache dtype kv_cache_dtype names for weights of `weights_dtype` (the dense dtype of a
  // quantized model), or nullopt for a name validate() rejects.
  std::optional<DType> kv_dtype(DType weights_dtype) const;
};

}  // namespace strata
