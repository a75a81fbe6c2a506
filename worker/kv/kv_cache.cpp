#include "worker/kv/kv_cache.h"

#include "common/check.h"
#include "kernels/kv_cache_format.h"

namespace strata {
namespace {

int64_t layer_bytes(const ModelConfig& config, const ShardPlan& shard, int block_size, DType dtype) {
  return shard.num_kv_heads * kernels::kv_tile_bytes(dtype, block_size, config.head_dim);
}

}  // namespace

KvCache::KvCache(const ModelConfig& config, int block_size, int64_t num_blocks, DType dtype,
                 Device device)
    : KvCache(config, ShardPlan::full(config), block_size, num_blocks, dtype, device) {}

KvCache::KvCache(const ModelConfig& config, const ShardPlan& shard, int block_size,
                 int64_t num_blocks, DType dtype, Device device)
    : block_size_(block_size), num_blocks_(num_blocks), dtype_(dtype) {
  STRATA_CHECK(kernels::is_kv_cache_dtype(dtype));
  const std::vector<int64_t> shape = {num_blocks * layer_bytes(config, shard, block_size, dtype)};
  for (int l = 0; l < shard.num_layers(); ++l) {
    k_.push_back(Tensor::empty(DType::kU8, shape, device));
    v_.push_back(Tensor::empty(DType::kU8, shape, device));
  }
}

int64_t KvCache::bytes_per_block(const ModelConfig& config, int block_size, DType dtype) {
  return bytes_per_block(config, ShardPlan::full(config), block_size, dtype);
}

int64_t KvCache::bytes_per_block(const ModelConfig& config, const ShardPlan& shard, int block_size,
                                 DType dtype) {
  return 2LL * shard.num_layers() * layer_bytes(config, shard, block_size, dtype);
}

}  // namespace strata
