// Portable GEMM for CPUs without AVX2: one fp32 accumulator per output walked over k in
// order, either weight layout. Slow, but it is the path every x86-64 machine can run and it is trivially batch
// invariant.
#include <omp.h>

#include <cstdint>

#include "kernels/cpu/gemm.h"

namespace strata::kernels::cpu {
namespace {

template <class LoadW>
void run(const GemmParams& p, int threads, bool round_x, LoadW load_w) {
  const int64_t n = p.n, k = p.k;
  const bool tiled = p.w_layout == WeightLayout::kTiled;
  if (p.m * n * k < (1 << 16)) threads = 1;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t i = 0; i < p.m; ++i) {
      const float* x = p.x + i * p.ldx;
      float acc = 0.0f;
      for (int64_t kk = 0; kk < k; ++kk) {
        const float xv = round_x ? bf16_to_f32(f32_to_bf16(x[kk])) : x[kk];
        acc += xv * load_w(tiled ? tiled_offset(j, kk, n, k) : j * k + kk);
      }
      float* out = p.y + i * p.ldy + j;
      float v = acc;
      if (p.bias != nullptr) v = v + p.bias[j];
      if (p.accumulate) v = *out + v;
      *out = v;
    }
  }
}

}  // namespace

void gemm_scalar(const GemmParams& p, int threads) {
  switch (p.w_dtype) {
    case DType::kBF16: {
      const auto* w = static_cast<const uint16_t*>(p.w);
      run(p, threads, true, [w](int64_t i) { return bf16_to_f32(w[i]); });
      return;
    }
    case DType::kF16: {
      const auto* w = static_cast<const uint16_t*>(p.w);
      run(p, threads, false, [w](int64_t i) { return f16_to_f32(w[i]); });
      return;
    }
    default: {
      const auto* w = static_cast<const float*>(p.w);
      run(p, threads, false, [w](int64_t i) { return w[i]; });
      return;
    }
  }
}

}  // namespace strata::kernels::cpu
