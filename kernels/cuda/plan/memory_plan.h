// How a GPU's memory is divided: strata may use gpu_memory_fraction of the device's total
// memory; weights and the activation/workspace reserve come first, and what remains is
// the paged KV pool, in whole blocks. Plain C++, unit-tested on the CPU; the device
// allocator (kernels/cuda/device_allocator.h) enforces the same budget at run time.
#pragma once

#include <cstdint>

#include "common/status.h"

namespace strata::kernels::cuda {

struct DeviceMemoryRequest {
  int64_t total_bytes = 0;           // the device's memory (cudaMemGetInfo)
  double gpu_memory_fraction = 0.9;  // (0, 1]: share of total_bytes strata may use
  int64_t weights_bytes = 0;
  int64_t activation_bytes = 0;      // activations, workspaces, cuBLAS, CUDA graphs
  int64_t kv_block_bytes = 0;        // one block, K and V, every layer, this rank's heads
};

struct DeviceMemoryPlan {
  int64_t budget_bytes = 0;  // floor(total · fraction)
  int64_t kv_bytes = 0;      // num_kv_blocks · kv_block_bytes
  int64_t num_kv_blocks = 0;
};

// Fails with a message naming the numbers when the budget holds no KV block at all.
StatusOr<DeviceMemoryPlan> plan_device_memory(const DeviceMemoryRequest& request);

}  // namespace strata::kernels::cuda
