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

// Row j of a kTiled matrix: where its tile's nibble blocks and scales start.
struct TiledRow {
  const uint8_t* nibbles;  // block b of this row at nibbles + b · rows · 64
  const uint8_t* scales;   // block b's scales at scales + b · rows · spb · 2
  int64_t rows;            // rows in the tile
  int spb, g;

  float weight(int64_t kk) const {
    const int64_t b = kk / kInt4TileK;
    const int o = static_cast<int>(kk % kInt4TileK);
    int h, e;
    int4_run_of(g, o, &h, &e);
    uint16_t word, d;
    std::memcpy(&word, nibbles + b * rows * 64 + 2 * e, 2);
    std::memcpy(&d, scales + (b * rows * spb + o / g) * 2, 2);
    const int q = (word >> (4 * h)) & 15;
    return static_cast<float>(q - 8) * f16_to_f32(d);
  }
};

TiledRow tiled_row(const GemmW4A16Params& p, int64_t j) {
  const int64_t j0 = j / kInt4TileRows * kInt4TileRows;
  const int64_t rows = p.n - j0 < kInt4TileRows ? p.n - j0 : kInt4TileRows;
  const auto* tile = static_cast<const uint8_t*>(p.w) + int4_rows_bytes(j0, p.k, p.group_size);
  const int spb = int4_block_scales(p.group_size);
  const int64_t r = j - j0, kb = int4_row_blocks(p.k);
  return {.nibbles = tile + r * 64,
          .scales = tile + rows * kb * 64 + r * spb * 2,
          .rows = rows,
          .spb = spb,
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
