#include "kernels/cuda/plan/memory_plan.h"

#include <cmath>

namespace strata::kernels::cuda {
namespace {

double gib(int64_t bytes) { return static_cast<double>(bytes) / (1 << 30); }

}  // namespace

StatusOr<DeviceMemoryPlan> plan_device_memory(const DeviceMemoryRequest& r) {
  if (!(r.gpu_memory_fraction > 0.0 && r.gpu_memory_fraction <= 1.0)) {
    return invalid_argument("gpu_memory_fraction must be in (0, 1]. Given: {}",
                            r.gpu_memory_fraction);
  }
  if (r.total_bytes <= 0 || r.weights_bytes < 0 || r.activation_bytes < 0 ||
      r.kv_block_bytes <= 0) {
    return invalid_argument(
        "device memory plan needs total_bytes > 0, kv_block_bytes > 0 and non-negative "
        "weights/activation bytes. Given: {}, {}, {}, {}",
        r.total_bytes, r.kv_block_bytes, r.weights_bytes, r.activation_bytes);
  }
  DeviceMemoryPlan plan;
  plan.budget_bytes = static_cast<int64_t>(
      std::floor(static_cast<double>(r.total_bytes) * r.gpu_memory_fraction));
  const int64_t left = plan.budget_bytes - r.weights_bytes - r.activation_bytes;
  if (left < r.kv_block_bytes) {
    return Status(StatusCode::kResourceExhausted,
                  fmt::format("gpu_memory_fraction {} of {:.2f} GiB gives {:.2f} GiB; weights "
                              "({:.2f} GiB) and activations ({:.2f} GiB) leave no room for one "
                              "KV block ({} bytes). Raise gpu_memory_fraction, shard the model "
                              "over more GPUs (tensor_parallel_size) or lower max_num_tokens",
                              r.gpu_memory_fraction, gib(r.total_bytes), gib(plan.budget_bytes),
                              gib(r.weights_bytes), gib(r.activation_bytes), r.kv_block_bytes));
  }
  plan.num_kv_blocks = left / r.kv_block_bytes;
  plan.kv_bytes = plan.num_kv_blocks * r.kv_block_bytes;
  return plan;
}

}  // namespace strata::kernels::cuda
