#include "kernels/cuda/device_allocator.h"

#include <cuda_runtime.h>

#include <array>
#include <atomic>
#include <cstdio>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/tensor.h"

namespace strata::kernels::cuda {
namespace {

struct DeviceBudget {
  std::atomic<int64_t> total{0}, budget{0}, in_use{0}, peak{0};
};

std::array<DeviceBudget, kMaxDevices>& budgets() {
  static std::array<DeviceBudget, kMaxDevices> b;
  return b;
}

void* allocate(int device, size_t bytes) {
  if (device < 0 || device >= kMaxDevices) return nullptr;
  DeviceBudget& b = budgets()[static_cast<size_t>(device)];
  const auto n = static_cast<int64_t>(bytes);
  const int64_t used = b.in_use.fetch_add(n) + n;
  if (used > b.budget.load()) {
    b.in_use.fetch_sub(n);
    std::fprintf(stderr,
                 "strata: cuda:%d: allocating %lld bytes would use %lld of the %lld-byte budget "
                 "(gpu_memory_fraction); raise gpu_memory_fraction or lower max_num_tokens\n",
                 device, static_cast<long long>(n), static_cast<long long>(used),
                 static_cast<long long>(b.budget.load()));
    return nullptr;
  }
  int64_t peak = b.peak.load();
  while (used > peak && !b.peak.compare_exchange_weak(peak, used)) {
  }
  int previous = 0;
  STRATA_CUDA_CHECK(cudaGetDevice(&previous));
  STRATA_CUDA_CHECK(cudaSetDevice(device));
  void* data = nullptr;
  const cudaError_t err = cudaMalloc(&data, bytes == 0 ? 256 : bytes);
  if (err == cudaSuccess) {
    STRATA_CUDA_CHECK(cudaMemset(data, 0, bytes == 0 ? 256 : bytes));
    // The memset runs on the legacy stream, which a non-blocking stream (the one decode
    // graphs replay on) does not wait for: finish it before the memory is handed out.
    STRATA_CUDA_CHECK(cudaDeviceSynchronize());
  }
  STRATA_CUDA_CHECK(cudaSetDevice(previous));
  if (err != cudaSuccess) {
    cudaGetLastError();
    b.in_use.fetch_sub(n);
    return nullptr;
  }
  return data;
}

void release(int device, void* data, size_t bytes) {
  cudaFree(data);  // unchecked: may run at exit, after the driver shut down
  budgets()[static_cast<size_t>(device)].in_use.fetch_sub(static_cast<int64_t>(bytes));
}

}  // namespace

Status init_device_memory(int device, double gpu_memory_fraction) {
  if (!(gpu_memory_fraction > 0.0 && gpu_memory_fraction <= 1.0)) {
    return invalid_argument("gpu_memory_fraction must be in (0, 1]. Given: {}",
                            gpu_memory_fraction);
  }
  const int count = device_count();
  if (device < 0 || device >= count || device >= kMaxDevices) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("CUDA device {} requested but {} visible (CUDA_VISIBLE_DEVICES?)",
                              device, count));
  }
  STRATA_CUDA_CHECK(cudaSetDevice(device));
  size_t free_bytes = 0, total_bytes = 0;
  STRATA_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  DeviceBudget& b = budgets()[static_cast<size_t>(device)];
  b.total = static_cast<int64_t>(total_bytes);
  b.budget = static_cast<int64_t>(static_cast<double>(total_bytes) * gpu_memory_fraction);
  register_device_allocator(DeviceType::kCuda, {.allocate = allocate, .release = release});
  return ok_status();
}

DeviceMemoryStats device_memory_stats(int device) {
  if (device < 0 || device >= kMaxDevices) return {};
  const DeviceBudget& b = budgets()[static_cast<size_t>(device)];
  return {.total_bytes = b.total.load(), .budget_bytes = b.budget.load(),
          .in_use_bytes = b.in_use.load(), .peak_bytes = b.peak.load()};
}

}  // namespace strata::kernels::cuda
