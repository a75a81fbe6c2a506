// Portable W4A16 GEMM for CPUs without AVX2, and the plainest statement of the arithmetic:
// each weight decoded from the kTiled layout to (q − 8)·d (exact in fp32), each activation
// rounded to bf16, one fp32 accumulator per output walked over k in order. Slow; trivially
// batch invariant.
#include <omp.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/gemm_w4a16.h"
#include "kernels/dtype.h"

namespace strata::kernels::cpu {
namespace {

// Row r of a kTiled tile of `rows` rows.
struct TiledRow {
  const uint8_t* tile;
  int64_t r, rows;
  int g;

  float weight(int64_t kk) const {
    const int64_t b = kk / kInt4TileK;
    const int o = static_cast<int>(kk % kInt4TileK);
    int h, e;
    int4_run_of(g, o, &h, &e);
    uint16_t word, d;
    std::memcpy(&word, tile + int4_nibbles_at(b, r, rows, g) + 2 * e, 2);
    std::memcpy(&d, tile + int4_scales_at(b, r, rows, g) + o / g * 2, 2);
    const int q = (word >> (4 * h)) & 15;
    return static_cast<float>(q - 8) * f16_to_f32(d);
  }
};

TiledRow tiled_row(const GemmW4A16Params& p, int64_t j) {
  const int64_t j0 = j / kInt4TileRows * kInt4TileRows;
  return {.tile = static_cast<const uint8_t*>(p.w) + int4_rows_bytes(j0, p.k, p.group_size),
          .r = j - j0,
          .rows = p.n - j0 < kInt4TileRows ? p.n - j0 : kInt4TileRows,
          .g = p.group_size};
}

}  // namespace

void gemm_w4a16_scalar(const GemmW4A16Params& p, int threads) {
  if (p.m * p.n * p.k < (1 << 16)) threads = 1;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t j = 0; j < p.n; ++j) {
    const TiledRow w = tiled_row(p, j);
    for (int64_t i = 0; i < p.m; ++i) {
      const float* x = p.x + i * p.ldx;
      float acc = 0.0f;
      for (int64_t kk = 0; kk < p.k; ++kk) {
        acc += bf16_to_f32(f32_to_bf16(x[kk])) * w.weight(kk);
      }
      float* out = p.y + i * p.ldy + j;
      float v = acc;
      if (p.bias != nullptr) v = v + p.bias[j];
      if (p.accumulate) v = *out + v;
      *out = v;
    }
  }
}

}  // namespace strata::kernels::cpu
