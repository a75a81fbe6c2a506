// Helpers for the W8A8 tests (CPU and GPU): quantized weights, the packed CPU buffer, and
// ops.h's arithmetic written out once as the exact reference every backend must match.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "kernels/ops.h"

namespace strata::kernels::testing {

// Zero-filled, 256-byte aligned bytes (a workspace or a packed buffer).
class AlignedBytes {
 public:
  explicit AlignedBytes(int64_t bytes)
      : data_(static_cast<unsigned char*>(
            std::aligned_alloc(256, static_cast<size_t>((bytes + 255) / 256 * 256 + 256)))) {
    std::fill_n(data_.get(), (bytes + 255) / 256 * 256 + 256, 0);
  }
  unsigned char* get() const { return data_.get(); }

 private:
  struct Free {
    void operator()(unsigned char* p) const { std::free(p); }
  };
  std::unique_ptr<unsigned char, Free> data_;
};

struct QuantizedWeights {
  int64_t n = 0, k = 0, group_size = 0, groups = 1;
  std::vector<int8_t> q;      // [n, k]
  std::vector<float> scales;  // [n, groups]
};

inline QuantizedWeights quantize(const std::vector<float>& w, int64_t n, int64_t k,
                                 int64_t group_size) {
  QuantizedWeights qw{.n = n, .k = k, .group_size = group_size,
                      .groups = w8a8_num_groups(k, group_size)};
  qw.q.resize(static_cast<size_t>(n * k));
  qw.scales.resize(static_cast<size_t>(n * qw.groups));
  quantize_weights_int8({.w = w.data(), .w_dtype = DType::kF32, .n = n, .k = k,
                         .group_size = group_size, .q = qw.q.data(),
                         .scales = qw.scales.data()});
  return qw;
}

// Random weights in [−127, 127] (the ends included) with positive random scales, as if
// quantized; a zero scale (an all-zero row) now and then.
inline QuantizedWeights random_quantized(int64_t n, int64_t k, int64_t group_size,
                                         uint32_t seed) {
  QuantizedWeights qw{.n = n, .k = k, .group_size = group_size,
                      .groups = w8a8_num_groups(k, group_size)};
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> value(-127, 127);
  std::uniform_real_distribution<float> scale(1e-4f, 2e-2f);
  qw.q.resize(static_cast<size_t>(n * k));
  for (auto& v : qw.q) v = static_cast<int8_t>(value(rng));
  qw.scales.resize(static_cast<size_t>(n * qw.groups));
  for (auto& s : qw.scales) s = rng() % 17 == 0 ? 0.0f : scale(rng);
  return qw;
}

inline std::vector<int8_t> random_int8(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> value(-127, 127);
  std::vector<int8_t> v(count);
  for (auto& x : v) x = static_cast<int8_t>(value(rng));
  return v;
}

// The packed buffer for cpu_backend().gemm_w8a8.
inline AlignedBytes pack_for_cpu(const QuantizedWeights& qw) {
  const KernelBackend& be = cpu_backend();
  AlignedBytes packed(be.w8a8_packed_bytes(qw.n, qw.k, qw.group_size));
  be.pack_w8a8({.q = qw.q.data(), .scales = qw.scales.data(), .dst = packed.get(),
                .n = qw.n, .k = qw.k, .group_size = qw.group_size});
  return packed;
}

// ops.h's gemm_w8a8 output (i, j), step by step (std::fma where ops.h says fma; this header's
// users build with -ffp-contract=off). `magnitude`, when given, receives
// Σ |acc_g · s_g| · x_scale.
inline float w8a8_reference(const int8_t* x, float x_scale, const QuantizedWeights& w,
                            int64_t j, const float* bias, const float* y_old,
                            double* magnitude = nullptr) {
  const int64_t group_k = w.group_size == 0 ? w.k : w.group_size;
  float dot = 0.0f;
  double mag = 0.0;
  for (int64_t g = 0; g < w.groups; ++g) {
    int64_t acc = 0;
    for (int64_t kk = g * group_k; kk < std::min(w.k, (g + 1) * group_k); ++kk) {
      acc += int64_t{x[kk]} * w.q[j * w.k + kk];
    }
    const float s = w.scales[j * w.groups + g];
    const auto f = static_cast<float>(static_cast<int32_t>(acc));
    dot = g == 0 ? f * s : std::fma(f, s, dot);
    mag += std::fabs(static_cast<double>(acc) * s);
  }
  float v = dot * x_scale;
  if (bias != nullptr) v = v + bias[j];
  if (y_old != nullptr) v = *y_old + v;
  if (magnitude != nullptr) *magnitude = mag * x_scale;
  return v;
}

}  // namespace strata::kernels::testing
