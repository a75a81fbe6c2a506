// AVX512-VNNI W8A8 GEMM. One vpdpbusd multiplies a packed 64-byte block (16 columns × 4 k,
// stored as w + 128, unsigned) by 4 activation bytes broadcast to every lane (signed), adding
// the 4 products into each column's int32 lane; the accumulators start at −128 · Σ x of the
// group (W8Activations), so they end at Σ x · w exactly. No horizontal sums: a lane is an
// output column. A microkernel is MR activation rows × one 64-column tile (4 zmm per row):
// 4 rows per channel (16 accumulators), 3 with scale groups (their fp32 sums live too).
//
// Decode (m ≤ 4, or 3 with groups): one row block per tile, so each thread streams its range of
// tiles from DRAM once, with software prefetch ahead of the loads. Prefill: the tile
// (64 · k bytes) stays in L2 while every row block of the item walks it.
//
// GCC 12 reports the deliberately undefined lanes inside its own AVX-512 intrinsic headers
// (_mm512_undefined_*) as uninitialized; the warning concerns the header, not this file.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#include <omp.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/gemm_w8a8.h"

namespace strata::kernels::cpu {
namespace {

// Rows per microkernel: 4 × 4 int32 accumulators per channel (6 rows spill and ran at half
// the speed); with scale groups the fp32 sums stay live too, and 3 rows (12 + 12 + 4
// weights + 1) is what fits in 32 registers (4 rows spilled: 15% slower).
constexpr int kMr = 4;
constexpr int kMrGrouped = 3;
// Bytes ahead of the load that decode prefetches. 1–16 KiB measured alike within the noise
// of a shared 2-core Zen 4 VM (TinyLlama shapes, one thread); 4 KiB is in the middle.
constexpr int64_t kPrefetchBytes = 4096;

struct Tile {
  const uint8_t* w;       // the tile's first byte
  const int8_t* x;        // first activation row (prepared), rows ldx apart
  int64_t ldx;
  const int32_t* corr;    // first row's corrections, rows `groups` apart
  const float* x_scale;   // first row's scale
  const float* bias;      // the tile's first column, or nullptr
  float* y;               // the tile's first column of the first row, rows ldy apart
  int64_t ldy;
  int cols;               // valid columns, 1..64
  bool accumulate;
};

// acc += Σ of 4 (unsigned w byte) · (signed x byte) products per int32 lane. Inline asm,
// not _mm512_dpbusd_epi32: GCC 12 does not tie the intrinsic's accumulator input to its
// output and copies every accumulator twice per iteration (measured: 2 moves per vpdpbusd).
inline void dpbusd(__m512i& acc, __m512i w, __m512i x) {
  asm("vpdpbusd %[x], %[w], %[acc]" : [acc] "+v"(acc) : [w] "v"(w), [x] "v"(x));
}

inline int32_t load4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// ops.h's epilogue for MR rows of the tile: v = dot · x_scale, + bias, then y + v.
template <int MR>
inline void store_rows(const Tile& t, const __m512 (&dot)[MR][4]) {
  __mmask16 mask[4];
  for (int v = 0; v < 4; ++v) {
    const int lanes = t.cols - 16 * v;
    mask[v] = lanes >= 16 ? __mmask16(0xffff)
                          : lanes <= 0 ? __mmask16(0) : __mmask16((1u << lanes) - 1u);
  }
  for (int r = 0; r < MR; ++r) {
    const __m512 xs = _mm512_set1_ps(t.x_scale[r]);
    float* y = t.y + r * t.ldy;
    for (int v = 0; v < 4; ++v) {
      if (mask[v] == 0) break;
      __m512 val = _mm512_mul_ps(dot[r][v], xs);
      if (t.bias != nullptr) {
        val = _mm512_add_ps(val, _mm512_maskz_loadu_ps(mask[v], t.bias + 16 * v));
      }
      if (t.accumulate) val = _mm512_add_ps(_mm512_maskz_loadu_ps(mask[v], y + 16 * v), val);
      _mm512_mask_storeu_ps(y + 16 * v, mask[v], val);
    }
  }
}

template <int MR>
void micro(const Tile& t, const W8Layout& l) {
  __m512 dot[MR][4];
  const uint8_t* w = t.w;
  for (int64_t g = 0; g < l.groups; ++g) {
    __m512i acc[MR][4];
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const __m512i c = _mm512_set1_epi32(t.corr[r * l.groups + g]);
      for (int v = 0; v < 4; ++v) acc[r][v] = c;
    }
    const int64_t blocks = w8_group_blocks(l, g);
    const int8_t* x = t.x + g * l.group_k;
    for (int64_t b = 0; b < blocks; ++b) {
      const uint8_t* wb = w + b * kW8BlockBytes;
      if constexpr (MR <= 2) {
        for (int v = 0; v < 4; ++v) {
          _mm_prefetch(reinterpret_cast<const char*>(wb) + 64 * v + kPrefetchBytes, _MM_HINT_T0);
        }
      }
      const __m512i w0 = _mm512_loadu_si512(wb), w1 = _mm512_loadu_si512(wb + 64);
      const __m512i w2 = _mm512_loadu_si512(wb + 128), w3 = _mm512_loadu_si512(wb + 192);
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) {
        const __m512i xb = _mm512_set1_epi32(load4(x + r * t.ldx + 4 * b));
        dpbusd(acc[r][0], w0, xb);
        dpbusd(acc[r][1], w1, xb);
        dpbusd(acc[r][2], w2, xb);
        dpbusd(acc[r][3], w3, xb);
      }
    }
    const auto* scales = reinterpret_cast<const float*>(w + blocks * kW8BlockBytes);
    w += l.group_stride;
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      const __m512 s = _mm512_loadu_ps(scales + 16 * v);
      for (int r = 0; r < MR; ++r) {
        const __m512 f = _mm512_cvtepi32_ps(acc[r][v]);
        dot[r][v] = g == 0 ? _mm512_mul_ps(f, s) : _mm512_fmadd_ps(f, s, dot[r][v]);
      }
    }
  }
  store_rows<MR>(t, dot);
}

using MicroFn = void (*)(const Tile&, const W8Layout&);
constexpr MicroFn kMicro[kMr] = {micro<1>, micro<2>, micro<3>, micro<4>};

}  // namespace

void gemm_w8a8_avx512(const GemmW8A8Params& p, const W8Layout& l, const W8Activations& a,
                      int threads) {
  const int64_t mr_max = l.groups == 1 ? kMr : kMrGrouped;
  const W8Split s = w8_split(p, l, mr_max, threads);
  const auto* w = static_cast<const uint8_t*>(p.w);
  const int64_t items = l.tiles * s.row_chunks;
#pragma omp parallel num_threads(s.threads)
  {
    const int tid = omp_get_thread_num();
    const int nt = omp_get_num_threads();
    for (int64_t item = items * tid / nt; item < items * (tid + 1) / nt; ++item) {
      const int64_t tile = item / s.row_chunks;
      const int64_t j = tile * kInt8TileCols;
      const int64_t i1 = (item % s.row_chunks + 1) * s.row_chunk;
      for (int64_t i = (item % s.row_chunks) * s.row_chunk; i < i1 && i < p.m; i += mr_max) {
        const int64_t mr = p.m - i < mr_max ? p.m - i : mr_max;
        const Tile t{.w = w + tile * l.tile_bytes,
                     .x = a.x + i * a.ldx,
                     .ldx = a.ldx,
                     .corr = a.corr + i * l.groups,
                     .x_scale = p.x_scale + i,
                     .bias = p.bias != nullptr ? p.bias + j : nullptr,
                     .y = p.y + i * p.ldy + j,
                     .ldy = p.ldy,
                     .cols = static_cast<int>(p.n - j < kInt8TileCols ? p.n - j : kInt8TileCols),
                     .accumulate = p.accumulate};
        kMicro[mr - 1](t, l);
      }
    }
  }
}

}  // namespace strata::kernels::cpu
