// Portable W8A8 GEMM for CPUs without AVX2, and the plainest statement of ops.h's
// arithmetic: per output, per group, an int32 sum of (byte − 128) · x, then the fp32
// epilogue step by step (std::fma where ops.h says fma). The SIMD paths give its bits.
#include <omp.h>

#include <cmath>
#include <cstdint>

#include "kernels/cpu/gemm_w8a8.h"

namespace strata::kernels::cpu {
namespace {

// Output (i, column c of tile t).
float dot(const uint8_t* tile, const W8Layout& l, int64_t c, const int8_t* x) {
  float d = 0.0f;
  const uint8_t* group = tile;
  for (int64_t g = 0; g < l.groups; ++g, group += l.group_stride) {
    const int64_t blocks = w8_group_blocks(l, g);
    const int8_t* xg = x + g * l.group_k;
    int32_t acc = 0;
    for (int64_t kk = 0; kk < 4 * blocks; ++kk) {
      const int32_t w = group[kk / 4 * kW8BlockBytes + 4 * c + kk % 4] - 128;
      acc += w * xg[kk];  // x is zero past k (W8Activations)
    }
    const float s = reinterpret_cast<const float*>(group + blocks * kW8BlockBytes)[c];
    d = g == 0 ? static_cast<float>(acc) * s : std::fma(static_cast<float>(acc), s, d);
  }
  return d;
}

}  // namespace

void gemm_w8a8_scalar(const GemmW8A8Params& p, const W8Layout& l, const W8Activations& a,
                      int threads) {
  const auto* w = static_cast<const uint8_t*>(p.w);
  const W8Split s = w8_split(p, l, 1, threads);
#pragma omp parallel for num_threads(s.threads) schedule(static)
  for (int64_t t = 0; t < l.tiles; ++t) {
    for (int64_t i = 0; i < p.m; ++i) {
      for (int64_t c = 0; c < kInt8TileCols && t * kInt8TileCols + c < p.n; ++c) {
        const int64_t j = t * kInt8TileCols + c;
        float v = dot(w + t * l.tile_bytes, l, c, a.x + i * a.ldx) * p.x_scale[i];
        if (p.bias != nullptr) v = v + p.bias[j];
        float* out = p.y + i * p.ldy + j;
        if (p.accumulate) v = *out + v;
        *out = v;
      }
    }
  }
}

}  // namespace strata::kernels::cpu
