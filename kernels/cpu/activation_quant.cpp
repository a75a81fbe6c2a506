// Two passes over each row, no scratch: the first finds amax, the second recomputes each
// value (the same bits) and quantizes it. Recomputing costs one more multiply per element
// in RMSNorm and one more exp in SiLU·mul; a row-sized buffer would be scratch the caller
// must own and size per thread, for a row the cache holds anyway.
#include "kernels/cpu/activation_quant.h"

#include <cmath>

#include "common/check.h"
#include "kernels/cpu/isa.h"
#include "kernels/w8a8.h"

namespace strata::kernels::cpu {
namespace {

int threads_for(int64_t rows, int64_t row_elems) {
  return rows * row_elems < (1 << 15) ? 1 : num_threads();
}

// Quantizes the row value(j) for j < n into out, returning its scale. `value` must give
// the same bits on both calls.
template <class Value>
float quantize_row(int64_t n, Value value, int8_t* out) {
  float amax = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    const float a = std::fabs(value(j));
    amax = a > amax ? a : amax;
  }
  const Int8Scale s = int8_scale(amax);
  for (int64_t j = 0; j < n; ++j) out[j] = quantize_int8(value(j), s.inv);
  return s.scale;
}

}  // namespace

void rmsnorm_quant(const RmsNormQuantParams& p) {
  STRATA_CHECK(p.m >= 0 && p.n > 0);
  if (p.m == 0) return;
  STRATA_CHECK(p.x != nullptr && p.weight != nullptr && p.out != nullptr && p.scale != nullptr);
  STRATA_CHECK(p.ldx >= p.n && p.ldo >= p.n);
#pragma omp parallel for num_threads(threads_for(p.m, p.n)) schedule(static)
  for (int64_t i = 0; i < p.m; ++i) {
    const float* x = p.x + i * p.ldx;
    // As rmsnorm (elementwise.cpp): squares summed in double, left to right.
    double sum_sq = 0.0;
    for (int64_t j = 0; j < p.n; ++j) sum_sq += static_cast<double>(x[j]) * x[j];
    const auto inv_rms =
        static_cast<float>(1.0 / std::sqrt(sum_sq / static_cast<double>(p.n) + p.eps));
    const float* weight = p.weight;
    p.scale[i] = quantize_row(
        p.n, [&](int64_t j) { return x[j] * inv_rms * weight[j]; }, p.out + i * p.ldo);
  }
}

void silu_mul_quant(const SiluMulQuantParams& p) {
  STRATA_CHECK(p.t >= 0 && p.f > 0);
  if (p.t == 0) return;
  STRATA_CHECK(p.gate_up != nullptr && p.out != nullptr && p.scale != nullptr);
  STRATA_CHECK(p.ld_in >= 2 * p.f && p.ld_out >= p.f);
#pragma omp parallel for num_threads(threads_for(p.t, p.f)) schedule(static)
  for (int64_t t = 0; t < p.t; ++t) {
    const float* gate = p.gate_up + t * p.ld_in;
    const float* up = gate + p.f;
    // As silu_mul (elementwise.cpp).
    p.scale[t] = quantize_row(
        p.f, [&](int64_t j) { return gate[j] / (1.0f + std::exp(-gate[j])) * up[j]; },
        p.out + t * p.ld_out);
  }
}

}  // namespace strata::kernels::cpu
