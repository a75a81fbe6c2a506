// How many KV blocks a worker rank's cache gets: on the CPU a fraction of the memory
// available now, on a GPU what the device memory plan leaves after the weights and the
// activation reserve; either way capped to what max_num_seqs sequences of max_model_len
// could ever use, unless kv_cache_bytes sets the size outright.
#pragma once

#include <cstdint>

#include "common/status.h"
#include "worker/engine/engine_config.h"
#include "worker/model/model_loader.h"

namespace strata {

// The dtype of `model`'s KV cache under `config` (kv_cache_dtype, "auto" resolved to the
// weights' dtype). Precondition: config.validate() passed.
DType kv_dtype(const LoadedModel& model, const EngineConfig& config);
// Bytes one block of that cache takes on this rank.
int64_t kv_block_bytes(const LoadedModel& model, const EngineConfig& config);

// The number of KV blocks of `kv_dtype` that `config` gives `model` on the CPU.
int64_t engine_kv_blocks(const ModelConfig& model, const ShardPlan& shard, const EngineConfig& config,
                         DType kv_dtype);

// Blocks the scheduler may hand out on config.device (the CPU's or the GPU's rule above);
// a padded-decode scratch block, where the engine needs one, comes on top of these.
// Precondition on a GPU: init_device succeeded.
StatusOr<int64_t> schedulable_kv_blocks(const LoadedModel& model, const EngineConfig& config);

// Decode-only steps run padded to CUDA-graph buckets; the KV cache then holds one more
// block than the scheduler hands out, which padding rows attend to.
bool uses_padded_decode(const EngineConfig& config);

}  // namespace strata
