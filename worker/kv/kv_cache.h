// KvCache: the paged key/value storage of one rank. Each layer has a K and a V pool of
// fixed-size blocks; which block holds which positions of which sequence is decided by the
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
  KvCache(const ModelConfig& config, int block_size, int64_t num_blocks, Device device = {});
  // One rank's share: its KV heads of its pipeline stage's layers.
  KvCache(const ModelConfig& config, const ShardPlan& shard, int block_size, int64_t num_blocks,
          Device device = {});

  // Bytes one block takes across all (local) layers (K and V, fp32).
  static int64_t bytes_per_block(const ModelConfig& config, int block_size);
  static int64_t bytes_per_block(const ModelConfig& config, const ShardPlan& shard, int block_size);

  float* k(int layer) { return k_[static_cast<size_t>(layer)].data<float>(); }
  float* v(int layer) { return v_[static_cast<size_t>(layer)].data<float>(); }
  int block_size() const { return block_size_; }
  int64_t num_blocks() const { return num_blocks_; }

 private:
  int block_size_;
  int64_t num_blocks_;
  std::vector<Tensor> k_;  // per layer: [num_blocks, num_kv_heads, block_size, head_dim]
  std::vector<Tensor> v_;  // per layer: [num_blocks, num_kv_heads, block_size, head_dim]
};

}  // namespace strata
