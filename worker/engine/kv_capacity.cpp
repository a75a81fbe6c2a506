#include "worker/engine/kv_capacity.h"

#include <algorithm>
#include <fstream>
#include <string>

#include "common/check.h"
#include "kernels/device.h"
#include "kernels/device_plan.h"
#include "worker/kv/kv_cache.h"
#include "worker/model/llama_model.h"

namespace strata {
namespace {

int64_t available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit) {
    if (key == "MemAvailable:") return kb * 1024;
  }
  return int64_t{4} << 30;  // no /proc: assume a modest 4 GiB
}

// On a GPU: the blocks the memory plan leaves after weights (already on the device) and the
// activation reserve, capped as on the CPU; the scratch block comes out of them.
StatusOr<int64_t> gpu_kv_blocks(const LoadedModel& model, const EngineConfig& config) {
  const SchedulerConfig& s = config.scheduler;
  const ShardPlan& shard = model.weights.shard;
  const int64_t per_block = kv_block_bytes(model, config);
  const int64_t scratch = uses_padded_decode(config) ? 1 : 0;
  if (config.kv_cache_bytes > 0) return config.kv_cache_bytes / per_block - scratch;
  const int64_t max_tokens = std::max<int64_t>(s.max_num_batched_tokens, s.max_num_seqs);
  // Speculative verification wants every draft row's logits.
  const int64_t max_logit_rows =
      int64_t{s.max_num_seqs} * (config.speculative.enabled() ? 1 + s.num_speculative_tokens : 1);
  const KernelReserveRequest reserve{
      .weight_dtype = model.weights.dtype, .max_tokens = max_tokens,
      .max_gemm_k = std::max({int64_t{model.config.hidden_size}, shard.q_size(model.config.head_dim),
                              shard.ffn_size()}),
      .max_gemm_n = std::max({2 * shard.ffn_size(), int64_t{model.config.hidden_size},
                              shard.q_size(model.config.head_dim) + 2 * shard.kv_size(model.config.head_dim),
                              int64_t{shard.vocab_rows}}),  // the LM head, quantized like the layers
      .int8_gemms = model.weights.quantization == Quantization::kW8A8,
      .int4_gemms = model.weights.quantization == Quantization::kW4A16,
      .max_seqs = s.max_num_seqs, .max_context_len = static_cast<int>(s.max_model_len),
      .num_q_heads = shard.num_heads, .num_kv_heads = shard.num_kv_heads,
      .head_dim = model.config.head_dim};
  const DeviceMemoryUse use = device_memory_use(config.device);
  STRATA_ASSIGN_OR_RETURN(
      const int64_t num_kv_blocks,
      device_kv_blocks(
          {.total_bytes = use.total_bytes, .gpu_memory_fraction = config.gpu_memory_fraction,
           .weights_bytes = use.in_use_bytes,
           .activation_bytes = LlamaModel::workspace_bytes(model.config, shard, max_tokens, max_logit_rows) +
                               kernel_reserve_bytes(reserve),
           .kv_block_bytes = per_block}));
  const int64_t useful = int64_t{s.max_num_seqs} * KvBlockManager::blocks_for_tokens(s.max_model_len, s.block_size);
  return std::min(useful, num_kv_blocks - scratch);
}

}  // namespace

bool uses_padded_decode(const EngineConfig& config) {
  return !config.device.is_cpu() && config.cuda_graphs;
}

DType kv_dtype(const LoadedModel& model, const EngineConfig& config) {
  const std::optional<DType> dtype = config.kv_dtype(model.weights.dtype);
  STRATA_CHECK(dtype.has_value());
  return *dtype;
}

int64_t kv_block_bytes(const LoadedModel& model, const EngineConfig& config) {
  return KvCache::bytes_per_block(model.config, model.weights.shard, config.scheduler.block_size,
                                  kv_dtype(model, config));
}

int64_t engine_kv_blocks(const ModelConfig& model, const ShardPlan& shard, const EngineConfig& config,
                         DType kv_dtype) {
  const int32_t block_size = config.scheduler.block_size;
  const int64_t per_block = KvCache::bytes_per_block(model, shard, block_size, kv_dtype);
  if (config.kv_cache_bytes > 0) return config.kv_cache_bytes / per_block;
  const int64_t useful = int64_t{config.scheduler.max_num_seqs} *
                         KvBlockManager::blocks_for_tokens(config.scheduler.max_model_len, block_size);
  const auto budget = static_cast<int64_t>(config.kv_cache_memory_fraction *
                                           static_cast<double>(available_memory_bytes()));
  return std::min(useful, budget / per_block);
}

StatusOr<int64_t> schedulable_kv_blocks(const LoadedModel& model, const EngineConfig& config) {
  if (config.device.is_cpu()) {
    return engine_kv_blocks(model.config, model.weights.shard, config, kv_dtype(model, config));
  }
  return gpu_kv_blocks(model, config);
}

}  // namespace strata
