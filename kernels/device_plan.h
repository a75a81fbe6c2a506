// The launch planning the engine asks of a device, whatever the device: which attention
// shapes it runs, the batch buckets of its decode graphs, and how many KV blocks its memory
// holds once the weights and the activations are in. The CPU runs every shape, has no
// graphs and sizes its cache from host memory (the engine's rule); CUDA answers from its
// host-side planners (kernels/cuda/plan/), which build and are tested without a GPU. Code
// above kernels/ asks here instead of including those planners.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "kernels/tensor.h"

namespace strata {

// "" when `device` runs attention of this shape, else what is unsupported and the choices.
std::string attention_config_error(Device device, int num_q_heads, int num_kv_heads,
                                   int head_dim, int block_size);

// Ascending batch sizes decode graphs are captured for, up to max_batch.
std::vector<int> decode_graph_buckets(int max_batch);
// The smallest bucket that holds `batch`; nullopt when none does.
std::optional<int> decode_graph_bucket_for(const std::vector<int>& buckets, int batch);

struct DeviceKvBudget {
  int64_t total_bytes = 0;           // the device's memory
  double gpu_memory_fraction = 0.9;  // (0, 1]: the share strata may use
  int64_t weights_bytes = 0;
  int64_t activation_bytes = 0;      // activations, workspaces, runtime reserve
  int64_t kv_block_bytes = 0;        // one block, K and V, every layer, this rank's heads
};
// KV blocks that fit what the budget leaves; fails naming the numbers when none does.
StatusOr<int64_t> device_kv_blocks(const DeviceKvBudget& budget);

}  // namespace strata
