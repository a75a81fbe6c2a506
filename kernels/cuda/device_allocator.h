// The device allocator behind Tensor::empty(..., Device{kCuda, i}): plain cudaMalloc /
// cudaFree, zeroed, inside a budget of gpu_memory_fraction of the device's memory (the
// same budget plan/memory_plan.h divides into weights, activations and the KV pool). An
// allocation past the budget fails (std::bad_alloc from Tensor) instead of starving a
// neighbouring process on the same GPU. No CUDA types here.
#pragma once

#include <cstdint>

#include "common/status.h"

namespace strata::kernels::cuda {

inline constexpr int kMaxDevices = 16;

// Selects `device` for this thread, sets its budget and registers the allocator for
// DeviceType::kCuda. Fails (no throw) without a GPU or with a fraction outside (0, 1].
Status init_device_memory(int device, double gpu_memory_fraction);

struct DeviceMemoryStats {
  int64_t total_bytes = 0;   // the device's memory
  int64_t budget_bytes = 0;  // gpu_memory_fraction of it
  int64_t in_use_bytes = 0;  // live allocations through this allocator
  int64_t peak_bytes = 0;
};
DeviceMemoryStats device_memory_stats(int device);

}  // namespace strata::kernels::cuda
