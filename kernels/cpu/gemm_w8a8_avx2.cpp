// AVX2 W8A8 GEMM for machines without AVX-512 (this one has no AVX-VNNI either, so no
// vpdpbusd in ymm): vpmaddubsw + vpmaddwd. vpmaddubsw saturates its int16 pair sums, which
// (w + 128) · x could overflow, so it takes |w| (unsigned) against x · sign(w) (signed,
// vpsignb): each pair is at most 2 · 127 · 127 < 2^15, exact because neither operand is ever
// −128 (ops.h). vpmaddwd with ones then sums pairs into the column's int32 lane: the same
// lane-per-column scheme and layout as gemm_w8a8_avx512.cpp, 8 columns per ymm, half a
// 64-column tile (4 ymm) per microkernel, 1 or 2 activation rows (16 registers).
#include <immintrin.h>
#include <omp.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/gemm_w8a8.h"

namespace strata::kernels::cpu {
namespace {

constexpr int kMr = 2;
constexpr int kHalfCols = kInt8TileCols / 2;

struct Tile {
  const uint8_t* w;       // the 64-column tile's first byte
  int half;               // which 32 columns of it: 0 or 1
  const int8_t* x;        // first activation row (prepared), rows ldx apart
  int64_t ldx;
  const float* x_scale;   // first row's scale
  const float* bias;      // the half's first column, or nullptr
  float* y;               // the half's first column of the first row, rows ldy apart
  int64_t ldy;
  int cols;               // valid columns of the half, 1..32
  bool accumulate;
};

inline int32_t load4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

template <int MR>
inline void dot_blocks(const uint8_t* w, int64_t blocks, const int8_t* x, int64_t ldx,
                       __m256i (&acc)[MR][4]) {
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int64_t b = 0; b < blocks; ++b) {
    __m256i xb[MR];
    for (int r = 0; r < MR; ++r) xb[r] = _mm256_set1_epi32(load4(x + r * ldx + 4 * b));
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      const __m256i u = _mm256_loadu_si256(
          reinterpret_cast<const __m256i*>(w + b * kW8BlockBytes + 32 * v));
      const __m256i ws = _mm256_xor_si256(u, flip);  // w + 128 → w
      const __m256i wa = _mm256_abs_epi8(ws);
      for (int r = 0; r < MR; ++r) {
        const __m256i pairs = _mm256_maddubs_epi16(wa, _mm256_sign_epi8(xb[r], ws));
        acc[r][v] = _mm256_add_epi32(acc[r][v], _mm256_madd_epi16(pairs, ones));
      }
    }
  }
}

template <int MR>
inline void store_rows(const Tile& t, const __m256 (&dot)[MR][4]) {
  for (int r = 0; r < MR; ++r) {
    const __m256 xs = _mm256_set1_ps(t.x_scale[r]);
    float* y = t.y + r * t.ldy;
    for (int v = 0; v < 4 && 8 * v < t.cols; ++v) {
      const int lanes = t.cols - 8 * v < 8 ? t.cols - 8 * v : 8;
      alignas(32) float val[8], old[8] = {}, bias[8] = {};
      if (t.accumulate) std::memcpy(old, y + 8 * v, static_cast<size_t>(lanes) * 4);
      if (t.bias != nullptr) std::memcpy(bias, t.bias + 8 * v, static_cast<size_t>(lanes) * 4);
      __m256 out = _mm256_mul_ps(dot[r][v], xs);
      if (t.bias != nullptr) out = _mm256_add_ps(out, _mm256_load_ps(bias));
      if (t.accumulate) out = _mm256_add_ps(_mm256_load_ps(old), out);
      _mm256_store_ps(val, out);
      std::memcpy(y + 8 * v, val, static_cast<size_t>(lanes) * 4);
    }
  }
}

template <int MR>
void micro(const Tile& t, const W8Layout& l) {
  __m256 dot[MR][4];
  const uint8_t* w = t.w + t.half * (kW8BlockBytes / 2);
  for (int64_t g = 0; g < l.groups; ++g) {
    __m256i acc[MR][4];
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < 4; ++v) acc[r][v] = _mm256_setzero_si256();
    const int64_t blocks = w8_group_blocks(l, g);
    dot_blocks<MR>(w, blocks, t.x + g * l.group_k, t.ldx, acc);
    // w is already half a block in, which is also where the half's 32 scales start.
    const auto* scales = reinterpret_cast<const float*>(w + blocks * kW8BlockBytes);
    w += l.group_stride;
    for (int v = 0; v < 4; ++v) {
      const __m256 s = _mm256_loadu_ps(scales + 8 * v);
      for (int r = 0; r < MR; ++r) {
        const __m256 f = _mm256_cvtepi32_ps(acc[r][v]);
        dot[r][v] = g == 0 ? _mm256_mul_ps(f, s) : _mm256_fmadd_ps(f, s, dot[r][v]);
      }
    }
  }
  store_rows<MR>(t, dot);
}

}  // namespace

void gemm_w8a8_avx2(const GemmW8A8Params& p, const W8Layout& l, const W8Activations& a,
                    int threads) {
  const W8Split s = w8_split(p, l, kMr, threads);
  const auto* w = static_cast<const uint8_t*>(p.w);
  const int64_t items = l.tiles * s.row_chunks;
#pragma omp parallel num_threads(s.threads)
  {
    const int tid = omp_get_thread_num();
    const int nt = omp_get_num_threads();
    for (int64_t item = items * tid / nt; item < items * (tid + 1) / nt; ++item) {
      const int64_t tile = item / s.row_chunks;
      const int64_t i1 = (item % s.row_chunks + 1) * s.row_chunk;
      for (int64_t i = (item % s.row_chunks) * s.row_chunk; i < i1 && i < p.m; i += kMr) {
        const int64_t mr = p.m - i < kMr ? p.m - i : kMr;
        for (int half = 0; half < 2; ++half) {
          const int64_t j = tile * kInt8TileCols + half * kHalfCols;
          if (j >= p.n) break;
          const Tile t{.w = w + tile * l.tile_bytes,
                       .half = half,
                       .x = a.x + i * a.ldx,
                       .ldx = a.ldx,
                       .x_scale = p.x_scale + i,
                       .bias = p.bias != nullptr ? p.bias + j : nullptr,
                       .y = p.y + i * p.ldy + j,
                       .ldy = p.ldy,
                       .cols = static_cast<int>(p.n - j < kHalfCols ? p.n - j : kHalfCols),
                       .accumulate = p.accumulate};
          (mr == 1 ? micro<1> : micro<2>)(t, l);
        }
      }
    }
  }
}

}  // namespace strata::kernels::cpu
