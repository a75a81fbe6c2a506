#include "worker/kv/kv_cache.h"

namespace strata {

KvCache::KvCache(const ModelConfig& config, int block_size, int64_t num_blocks, Device device)
    : KvCache(config, ShardPlan::full(config), block_size, num_blocks, device) {}

KvCache::KvCache(const ModelConfig& config, const ShardPlan& shard, int block_size,
                 int64_t num_blocks, Device device)
    : block_size_(block_size), num_blocks_(num_blocks) {
  for (int l = 0; l < shard.num_layers(); ++l) {
    const std::vector<int64_t> shape = {num_blocks, shard.num_kv_heads, block_size, config.head_dim};
    k_.push_back(Tensor::empty(DType::kF32, shape, device));
    v_.push_back(Tensor::empty(DType::kF32, shape, device));
  }
}

int64_t KvCache::bytes_per_block(const ModelConfig& config, int block_size) {
  return bytes_per_block(config, ShardPlan::full(config), block_size);
}

int64_t KvCache::bytes_per_block(const ModelConfig& config, const ShardPlan& shard, int block_size) {
  return 2LL * shard.num_layers() * shard.kv_size(config.head_dim) * block_size *
         static_cast<int64_t>(sizeof(float));
}

}  // namespace strata
