#include "kernels/device_plan.h"

#include "kernels/cuda/plan/graph_buckets.h"
#include "kernels/cuda/plan/launch_plan.h"
#include "kernels/cuda/plan/memory_plan.h"

namespace strata {

std::string attention_config_error(Device device, int num_q_heads, int num_kv_heads,
                                   int head_dim, int block_size) {
  if (device.is_cpu()) return "";
  return kernels::cuda::attention_config_error(num_q_heads, num_kv_heads, head_dim, block_size);
}

std::vector<int> decode_graph_buckets(int max_batch) {
  return kernels::cuda::plan_graph_buckets(max_batch);
}

std::optional<int> decode_graph_bucket_for(const std::vector<int>& buckets, int batch) {
  return kernels::cuda::graph_bucket_for(buckets, batch);
}

StatusOr<int64_t> device_kv_blocks(const DeviceKvBudget& b) {
  STRATA_ASSIGN_OR_RETURN(
      const kernels::cuda::DeviceMemoryPlan plan,
      kernels::cuda::plan_device_memory({.total_bytes = b.total_bytes,
                                         .gpu_memory_fraction = b.gpu_memory_fraction,
                                         .weights_bytes = b.weights_bytes,
                                         .activation_bytes = b.activation_bytes,
                                         .kv_block_bytes = b.kv_block_bytes}));
  return plan.num_kv_blocks;
}

}  // namespace strata
