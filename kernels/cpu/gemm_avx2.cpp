// AVX2 GEMM for machines without AVX-512: 8-wide fp32 FMA for every weight dtype (bf16 and
// fp16 weights are widened to fp32 in registers; bf16 activations are rounded to bf16 first
// so results match the AVX512-BF16 path up to accumulation order). Same structure as
// gemm_avx512.cpp: activations packed once per call (zero-padded to a multiple of 8, so
// only the weight tail needs care), 4 rows × 3 weight rows of ymm accumulators. Reads both
// weight layouts (ops.h); a 3-row tile is half of a packed 6-row tile.
#include <immintrin.h>
#include <omp.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/avx2_lanes.h"
#include "kernels/cpu/gemm.h"

namespace strata::kernels::cpu {
namespace {

constexpr int kMr = 4;
constexpr int kNr = 3;
constexpr int64_t kChunkBytes = 512 * 1024;

using avx2::hsum;
using avx2::min64;
using avx2::round_bf16;
using avx2::round_up;

struct Bf16W {
  using W = uint16_t;
  static __m256 load(const W* p) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
};
struct F16W {
  using W = uint16_t;
  static __m256 load(const W* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
};
struct F32W {
  using W = float;
  static __m256 load(const W* p) { return _mm256_loadu_ps(p); }
};

template <class O>
__m256 load_w_tail(const typename O::W* p, int64_t rem) {
  typename O::W buf[8] = {};
  std::memcpy(buf, p, static_cast<size_t>(rem) * sizeof(typename O::W));
  return O::load(buf);
}

struct Tile {
  const float* x;  // packed activations, row stride ldx (multiple of 8, zero-padded)
  int64_t ldx;
  // Row-major: the tile's first weight row. kTiled: the first row of the 6-row packed tile
  // holding this 3-row tile, which starts at row w_row0 of it; w_rows rows in that tile.
  const void* w;
  int64_t w_row0, w_rows;
  int64_t k;
  float* y;
  int64_t ldy;
  const float* bias;
  bool accumulate;
};

// Where weight row c of the tile continues at column kk (kk a multiple of 8, or the k tail):
// 8-element groups never straddle a kTiled chunk, since chunks are 32 wide.
template <bool Tiled, class W>
inline const W* w_at(const Tile& t, const W* w, int c, int64_t kk) {
  if constexpr (!Tiled) {
    return w + c * t.k + kk;
  } else {
    const int64_t c0 = kk / kWeightTileChunk * kWeightTileChunk;
    const int64_t len = t.k - c0 < kWeightTileChunk ? t.k - c0 : kWeightTileChunk;
    return w + c0 * t.w_rows + (t.w_row0 + c) * len + (kk - c0);
  }
}

template <class O, int MR, int NR, bool Tiled>
void micro(const Tile& t) {
  const auto* w = static_cast<const typename O::W*>(t.w);
  const float* x = t.x;
  const int64_t k = t.k;
  __m256 acc[MR][NR];
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) acc[r][c] = _mm256_setzero_ps();
  const int64_t k_full = k / 8 * 8;
  for (int64_t kk = 0; kk < k_full; kk += 8) {
    __m256 wv[NR];
#pragma GCC unroll 3
    for (int c = 0; c < NR; ++c) wv[c] = O::load(w_at<Tiled>(t, w, c, kk));
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const __m256 xv = _mm256_loadu_ps(x + r * t.ldx + kk);
#pragma GCC unroll 3
      for (int c = 0; c < NR; ++c) acc[r][c] = _mm256_fmadd_ps(xv, wv[c], acc[r][c]);
    }
  }
  if (k_full < k) {
    __m256 wv[NR];
    for (int c = 0; c < NR; ++c) wv[c] = load_w_tail<O>(w_at<Tiled>(t, w, c, k_full), k - k_full);
    for (int r = 0; r < MR; ++r) {
      const __m256 xv = _mm256_loadu_ps(x + r * t.ldx + k_full);
      for (int c = 0; c < NR; ++c) acc[r][c] = _mm256_fmadd_ps(xv, wv[c], acc[r][c]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    for (int c = 0; c < NR; ++c) {
      float* out = t.y + r * t.ldy + c;
      float v = hsum(acc[r][c]);
      if (t.bias != nullptr) v = v + t.bias[c];
      if (t.accumulate) v = *out + v;
      *out = v;
    }
  }
}

using MicroFn = void (*)(const Tile&);

template <class O, bool Tiled>
MicroFn pick(int64_t mr, int64_t nr) {
  static constexpr MicroFn table[kMr][kNr] = {
      {micro<O, 1, 1, Tiled>, micro<O, 1, 2, Tiled>, micro<O, 1, 3, Tiled>},
      {micro<O, 2, 1, Tiled>, micro<O, 2, 2, Tiled>, micro<O, 2, 3, Tiled>},
      {micro<O, 3, 1, Tiled>, micro<O, 3, 2, Tiled>, micro<O, 3, 3, Tiled>},
      {micro<O, 4, 1, Tiled>, micro<O, 4, 2, Tiled>, micro<O, 4, 3, Tiled>}};
  return table[mr - 1][nr - 1];
}

void pack(const float* x, int64_t ldx, int64_t k, int64_t kp, bool to_bf16, int64_t r0,
          int64_t r1, float* out) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* src = x + r * ldx;
    float* dst = out + r * kp;
    const int64_t k_full = k / 8 * 8;
    for (int64_t kk = 0; kk < k_full; kk += 8) {
      __m256 v = _mm256_loadu_ps(src + kk);
      if (to_bf16) v = round_bf16(v);
      _mm256_storeu_ps(dst + kk, v);
    }
    if (k_full < kp) {
      float buf[8] = {};
      std::memcpy(buf, src + k_full, static_cast<size_t>(k - k_full) * sizeof(float));
      __m256 v = _mm256_loadu_ps(buf);
      if (to_bf16) v = round_bf16(v);
      _mm256_storeu_ps(dst + k_full, v);
    }
  }
}

template <class O>
void run(const GemmParams& p, float* packed, int threads) {
  const auto* w = static_cast<const typename O::W*>(p.w);
  const int64_t m = p.m, n = p.n, k = p.k;
  const int64_t kp = round_up(k, 8);
  const int64_t n_tiles = (n + kNr - 1) / kNr;
  int64_t chunk_rows = kChunkBytes / (kp * 4) / kMr * kMr;
  if (chunk_rows < kMr) chunk_rows = kMr;
  if (n_tiles < 2 * threads || m * n * k < (1 << 16)) threads = 1;
  const bool to_bf16 = p.w_dtype == DType::kBF16;
  const bool tiled = p.w_layout == WeightLayout::kTiled;
  static_assert(kWeightTileRows % kNr == 0, "a 3-row tile must lie inside one packed tile");

#pragma omp parallel num_threads(threads)
  {
    const int tid = omp_get_thread_num();
    const int nt = omp_get_num_threads();
    pack(p.x, p.ldx, k, kp, to_bf16, m * tid / nt, m * (tid + 1) / nt, packed);
#pragma omp barrier
    const int64_t t0 = n_tiles * tid / nt;
    const int64_t t1 = n_tiles * (tid + 1) / nt;
    for (int64_t i0 = 0; i0 < m; i0 += chunk_rows) {
      const int64_t i1 = min64(m, i0 + chunk_rows);
      for (int64_t tile = t0; tile < t1; ++tile) {
        const int64_t j = tile * kNr;
        const int64_t nr = min64(kNr, n - j);
        for (int64_t i = i0; i < i1; i += kMr) {
          const int64_t mr = min64(kMr, i1 - i);
          const int64_t j6 = j / kWeightTileRows * kWeightTileRows;
          const Tile t{.x = packed + i * kp,
                       .ldx = kp,
                       .w = w + (tiled ? j6 : j) * k,
                       .w_row0 = j - j6,
                       .w_rows = min64(kWeightTileRows, n - j6),
                       .k = k,
                       .y = p.y + i * p.ldy + j,
                       .ldy = p.ldy,
                       .bias = p.bias != nullptr ? p.bias + j : nullptr,
                       .accumulate = p.accumulate};
          (tiled ? pick<O, true>(mr, nr) : pick<O, false>(mr, nr))(t);
        }
      }
    }
  }
}

}  // namespace

int64_t gemm_workspace_bytes_avx2(int64_t m, int64_t k) { return m * round_up(k, 8) * 4 + 64; }

void gemm_avx2(const GemmParams& p, void* x_work, int threads) {
  auto* packed = static_cast<float*>(x_work);
  switch (p.w_dtype) {
    case DType::kBF16: run<Bf16W>(p, packed, threads); return;
    case DType::kF16: run<F16W>(p, packed, threads); return;
    default: run<F32W>(p, packed, threads); return;
  }
}

}  // namespace strata::kernels::cpu
