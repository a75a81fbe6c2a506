// Helpers for the GPU tests: device arrays, a fixture that skips without a GPU, and the
// relative error measure with its bound per dtype.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/dtype.h"

namespace strata::kernels::testing {

// Reported as skipped (not passed) where no GPU is visible.
class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0) {
      GTEST_SKIP() << "no CUDA device: cudaGetDeviceCount failed or returned 0";
    }
  }
  void TearDown() override {
    if (cuda::device_count() > 0) cuda::synchronize();
  }
};

template <typename T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : n_(n) {
    EXPECT_EQ(cudaMalloc(&data_, std::max<size_t>(n, 1) * sizeof(T)), cudaSuccess);
    EXPECT_EQ(cudaMemset(data_, 0, std::max<size_t>(n, 1) * sizeof(T)), cudaSuccess);
  }
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) {
    EXPECT_EQ(cudaMemcpy(data_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice),
              cudaSuccess);
  }
  ~DeviceArray() { cudaFree(data_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  T* get() const { return data_; }
  std::vector<T> to_host() const {
    cuda::synchronize();
    std::vector<T> host(n_);
    EXPECT_EQ(cudaMemcpy(host.data(), data_, n_ * sizeof(T), cudaMemcpyDeviceToHost),
              cudaSuccess);
    return host;
  }

 private:
  T* data_ = nullptr;
  size_t n_;
};

// max |got − want| / max(max |want|, tiny): one number per output, scale-free.
inline double relative_error(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  double diff = 0.0, scale = 1e-30;
  for (size_t i = 0; i < want.size() && i < got.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(got[i]) - want[i]));
    scale = std::max(scale, std::abs(static_cast<double>(want[i])));
  }
  return diff / scale;
}

// Bounds against the CPU twin. bf16: both sides round the activations the same way and
// differ only in fp32 summation order; fp16: the GPU also rounds the activations to fp16.
inline double error_bound(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return 1e-5;
    case DType::kBF16:
      return 1e-4;
    case DType::kF16:
      return 2e-3;
    default:
      return 0.0;
  }
}

inline constexpr int64_t kAwkwardRows[] = {1, 19, 111, 989};

}  // namespace strata::kernels::testing
