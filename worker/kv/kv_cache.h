// KvCache: the paged key/value storage of one rank. Each layer has a K and a V pool of
// fixed-size blocks in one cache dtype (fp32, bf16, fp16 or group-quantized int8, in the
// tiles of kernels/kv_cache_format.h); which block holds which positions of which sequence is decided by the
// block tables (BlockPool hands out ids), never by the cache itself.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/tensor.h"
#include "worker/model/model_config.h"
#include "worker/model/shard_plan.h"

namespace strata {

class KvCache {
 public:
  // The whole model's KV heads and layers.
  KvCache(const ModelConfig& config, int block_size, int64_t num_blocks, DType dtype,
          Device device = {});
  // One rank's share: its KV heads of its pipeline stage's layers.
  KvCache(const ModelConfig& config, const ShardPlan& shard, int block_size, int64_t num_blocks,
          DType dtype, Device device = {});

  // Bytes one block takes across all (local) layers, K and V, in `dtype`
  // (kernels/kv_cache_format.h: int8 blocks carry their scales).
  static int64_t bytes_per_block(const ModelConfig& config, int block_size, DType dtype);
  static int64_t bytes_per_block(const ModelConfig& config, const ShardPlan& shard, int block_size,
                                 DType dtype);

  // A layer's K or V tiles, in dtype().
  void* k(int layer) { return k_[static_cast<size_t>(layer)].raw(); }
  void* v(int layer) { return v_[static_cast<size_t>(layer)].raw(); }
  DType dtype() const { return dtype_; }
  int block_size() const { return block_size_; }
  int64_t num_blocks() const { return num_blocks_; }

 private:
  int block_size_;
  int64_t num_blocks_;
  DType dtype_;
  std::vector<Tensor> k_;  // per layer: [num_blocks · num_kv_heads tiles] as bytes
  std::vector<Tensor> v_;
};

}  // namespace strata
