// AVX-512 GEMM: bf16 weights through AVX512-BF16 dot products, fp32 and fp16 weights
// through fp32 FMA. One register-blocked microkernel (up to 4 activation rows × 6 weight
// rows of zmm accumulators, both operands k-contiguous) serves decode, batched decode and
// prefill, so every m computes an element the same way (see gemm.h on batch invariance).
// Weights row-major or kTiled (ops.h): a kTiled 6-row tile is exactly one microkernel
// tile, read front to back, so decode streams each thread's weights sequentially.
//
// Loop nest per thread: its own contiguous range of weight rows (decode streams each weight
// byte once, split over cores); activations in chunks that stay in L2; for each 6-row
// weight tile (L1-resident) every 4-row block of the chunk. So for m up to the chunk size
// (≥ 64 rows at k ≤ 4096) the weights are read from memory once per call.
// GCC 12 reports the deliberately undefined lanes inside its own AVX-512 intrinsic headers
// (_mm512_undefined_*) as uninitialized; the warning concerns the header, not this file.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#include <omp.h>

#include <cstdint>

#include "kernels/cpu/gemm.h"

namespace strata::kernels::cpu {
namespace {

constexpr int kMr = 4;
constexpr int kNr = 6;
// Activation bytes per chunk: half of the 1 MiB L2, leaving room for the weight tile.
constexpr int64_t kChunkBytes = 512 * 1024;
// Decode (few activation rows) is bound by DRAM: each weight row also prefetches the same
// offset kPrefetchRows rows further on, so about 2·kNr row streams are in flight per core
// instead of the one or two the hardware prefetcher follows through a contiguous tile.
constexpr int64_t kPrefetchRows = 2 * kNr;
// With kTiled weights the thread's tiles are one sequential stream; prefetch this many
// bytes ahead of the load. 1–8 KiB measured alike on Zen 5 (llama-110m decode within
// noise); 2 KiB is about what one core has in flight at DRAM latency.
constexpr int64_t kTiledPrefetchBytes = 2048;

inline int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }
inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// The one horizontal-sum order every element uses: lanes (i, i+8), then (i, i+4),
// (i, i+2), (i, i+1). hsum4 applies exactly the same pairs to four accumulators at once
// (float addition is commutative bit for bit, so operand order inside a pair is free).
inline float hsum(__m512 v) {
  const __m256 lo = _mm512_castps512_ps256(v);
  const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
  const __m256 s8 = _mm256_add_ps(lo, hi);
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  const __m128 s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
  return _mm_cvtss_f32(s1);
}

inline __m128 hsum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  const __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
  const __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xEE));
  const __m512 s4 = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xDD));
  const __m512 s2 = _mm512_add_ps(s4, _mm512_permute_ps(s4, 0x4E));
  const __m512 s1 = _mm512_add_ps(s2, _mm512_permute_ps(s2, 0xB1));
  const __m512i lanes = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0);
  return _mm512_castps512_ps128(_mm512_permutexvar_ps(lanes, s1));
}

// Weight-dtype traits: how a k-chunk of activations and weights is loaded and multiplied
// into an fp32 accumulator. tail loads zero every lane past `rem`.
struct Bf16Ops {
  // Activations are pre-rounded to bf16 and zero-padded to a multiple of kStep.
  using X = uint16_t;
  using W = uint16_t;
  using XV = __m512i;
  using WV = __m512i;
  static constexpr int kStep = 32;
  static XV load_x(const X* p) { return _mm512_loadu_si512(p); }
  static XV load_x_tail(const X* p, int64_t) { return _mm512_loadu_si512(p); }
  static WV load_w(const W* p) { return _mm512_loadu_si512(p); }
  static WV load_w_tail(const W* p, int64_t rem) {
    return _mm512_maskz_loadu_epi16(_cvtu32_mask32((1u << rem) - 1u), p);
  }
  static __m512 fma(__m512 acc, XV x, WV w) {
    return _mm512_dpbf16_ps(acc, (__m512bh)x, (__m512bh)w);
  }
};

struct F32Ops {
  using X = float;
  using W = float;
  using XV = __m512;
  using WV = __m512;
  static constexpr int kStep = 16;
  static __mmask16 mask(int64_t rem) { return _cvtu32_mask16((1u << rem) - 1u); }
  static XV load_x(const X* p) { return _mm512_loadu_ps(p); }
  static XV load_x_tail(const X* p, int64_t rem) { return _mm512_maskz_loadu_ps(mask(rem), p); }
  static WV load_w(const W* p) { return _mm512_loadu_ps(p); }
  static WV load_w_tail(const W* p, int64_t rem) { return _mm512_maskz_loadu_ps(mask(rem), p); }
  static __m512 fma(__m512 acc, XV x, WV w) { return _mm512_fmadd_ps(x, w, acc); }
};

struct F16Ops {
  using X = float;
  using W = uint16_t;
  using XV = __m512;
  using WV = __m512;
  static constexpr int kStep = 16;
  static __mmask16 mask(int64_t rem) { return _cvtu32_mask16((1u << rem) - 1u); }
  static XV load_x(const X* p) { return _mm512_loadu_ps(p); }
  static XV load_x_tail(const X* p, int64_t rem) { return _mm512_maskz_loadu_ps(mask(rem), p); }
  static WV load_w(const W* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static WV load_w_tail(const W* p, int64_t rem) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask(rem), p));
  }
  static __m512 fma(__m512 acc, XV x, WV w) { return _mm512_fmadd_ps(x, w, acc); }
};

struct Tile {
  const void* x;  // first activation row of the block, row stride ldx elements
  int64_t ldx;
  const void* w;  // first weight row of the tile, rows of k elements
  int64_t k;
  float* y;       // y[row][col], row stride ldy
  int64_t ldy;
  const float* bias;  // bias for the tile's first column, or nullptr
  bool accumulate;
};

inline float finish(float dot, const float* bias, int c, const float* y_old, bool accumulate) {
  float v = dot;
  if (bias != nullptr) v = v + bias[c];
  if (accumulate) v = *y_old + v;
  return v;
}

// MR activation rows × NR weight rows. Every accumulator walks k in kStep chunks, tail
// last, whatever MR and NR are: this is what makes the result independent of tiling.
// Row c of the tile at column kk (a multiple of kStep, or the k tail). kTiled: the chunk
// holding kk starts at c0 and holds the tile's NR rows back to back, len elements each.
// With bf16 (kStep == chunk) the full steps reduce to kk·NR + c·kStep.
template <class O, int NR, bool Tiled, bool FullStep>
inline const typename O::W* w_at(const typename O::W* w, int64_t k, int c, int64_t kk) {
  if constexpr (!Tiled) {
    return w + c * k + kk;
  } else if constexpr (FullStep && O::kStep == kWeightTileChunk) {
    return w + kk * NR + c * kWeightTileChunk;
  } else {
    const int64_t c0 = kk / kWeightTileChunk * kWeightTileChunk;
    const int64_t len = k - c0 < kWeightTileChunk ? k - c0 : kWeightTileChunk;
    return w + c0 * NR + c * len + (kk - c0);
  }
}

template <class O, int MR, int NR, bool Tiled>
void micro(const Tile& t) {
  static_assert(kWeightTileChunk % O::kStep == 0, "a k-step must not straddle a chunk");
  const auto* x = static_cast<const typename O::X*>(t.x);
  const auto* w = static_cast<const typename O::W*>(t.w);
  const int64_t k = t.k;
  __m512 acc[MR][NR];
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 6
    for (int c = 0; c < NR; ++c) acc[r][c] = _mm512_setzero_ps();

  const int64_t k_full = k / O::kStep * O::kStep;
  for (int64_t kk = 0; kk < k_full; kk += O::kStep) {
    typename O::XV xv[MR];
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) xv[r] = O::load_x(x + r * t.ldx + kk);
#pragma GCC unroll 6
    for (int c = 0; c < NR; ++c) {
      const typename O::W* wp = w_at<O, NR, Tiled, true>(w, k, c, kk);
      if constexpr (MR <= 2 && Tiled) {
        _mm_prefetch(reinterpret_cast<const char*>(wp) + kTiledPrefetchBytes, _MM_HINT_T0);
      } else if constexpr (MR <= 2) {
        _mm_prefetch(reinterpret_cast<const char*>(wp + kPrefetchRows * k), _MM_HINT_T0);
      }
      const typename O::WV wv = O::load_w(wp);
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) acc[r][c] = O::fma(acc[r][c], xv[r], wv);
    }
  }
  if (k_full < k) {
    const int64_t rem = k - k_full;
    typename O::XV xv[MR];
    for (int r = 0; r < MR; ++r) xv[r] = O::load_x_tail(x + r * t.ldx + k_full, rem);
    for (int c = 0; c < NR; ++c) {
      const typename O::WV wv = O::load_w_tail(w_at<O, NR, Tiled, false>(w, k, c, k_full), rem);
      for (int r = 0; r < MR; ++r) acc[r][c] = O::fma(acc[r][c], xv[r], wv);
    }
  }

  for (int c = 0; c < NR; ++c) {
    float dots[kMr];
    if constexpr (MR == 4) {
      _mm_storeu_ps(dots, hsum4(acc[0][c], acc[1][c], acc[2][c], acc[3][c]));
    } else {
      for (int r = 0; r < MR; ++r) dots[r] = hsum(acc[r][c]);
    }
    for (int r = 0; r < MR; ++r) {
      float* out = t.y + r * t.ldy + c;
      *out = finish(dots[r], t.bias, c, out, t.accumulate);
    }
  }
}

using MicroFn = void (*)(const Tile&);

template <class O, int MR, bool Tiled>
constexpr MicroFn kRowKernels[kNr] = {micro<O, MR, 1, Tiled>, micro<O, MR, 2, Tiled>,
                                      micro<O, MR, 3, Tiled>, micro<O, MR, 4, Tiled>,
                                      micro<O, MR, 5, Tiled>, micro<O, MR, 6, Tiled>};

template <class O, bool Tiled>
MicroFn pick(int64_t mr, int64_t nr) {
  switch (mr) {
    case 1: return kRowKernels<O, 1, Tiled>[nr - 1];
    case 2: return kRowKernels<O, 2, Tiled>[nr - 1];
    case 3: return kRowKernels<O, 3, Tiled>[nr - 1];
    default: return kRowKernels<O, 4, Tiled>[nr - 1];
  }
}

// Rounds each activation row to bf16 (round-to-nearest-even) into x_out [m][kp], zero
// padding each row from k to kp. Rows [r0, r1) only: threads split the rows.
void pack_bf16(const float* x, int64_t ldx, int64_t k, int64_t kp, int64_t r0, int64_t r1,
               uint16_t* x_out) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* src = x + r * ldx;
    uint16_t* dst = x_out + r * kp;
    for (int64_t kk = 0; kk < kp; kk += 32) {
      const int64_t rem_lo = min64(16, k - kk > 0 ? k - kk : 0);
      const int64_t rem_hi = min64(16, k - kk - 16 > 0 ? k - kk - 16 : 0);
      const __m512 lo = _mm512_maskz_loadu_ps(_cvtu32_mask16((1u << rem_lo) - 1u), src + kk);
      const __m512 hi =
          _mm512_maskz_loadu_ps(_cvtu32_mask16((1u << rem_hi) - 1u), src + kk + 16);
      _mm512_storeu_si512(dst + kk, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    }
  }
}

template <class O>
void run(const GemmParams& p, const typename O::X* x, int64_t ldx, uint16_t* pack_out,
         int threads) {
  const auto* w = static_cast<const typename O::W*>(p.w);
  const int64_t m = p.m, n = p.n, k = p.k;
  const int64_t n_tiles = (n + kNr - 1) / kNr;
  const int64_t row_bytes = ldx * static_cast<int64_t>(sizeof(typename O::X));
  int64_t chunk_rows = kChunkBytes / (row_bytes > 0 ? row_bytes : 1) / kMr * kMr;
  if (chunk_rows < kMr) chunk_rows = kMr;
  static_assert(kNr == kWeightTileRows, "a microkernel tile is one packed tile");
  const bool tiled = p.w_layout == WeightLayout::kTiled;
  // Small problems do not pay for waking a second thread.
  if (n_tiles < 2 * threads || m * n * k < (1 << 16)) threads = 1;

#pragma omp parallel num_threads(threads)
  {
    const int tid = omp_get_thread_num();
    const int nt = omp_get_num_threads();
    if (pack_out != nullptr) {
      pack_bf16(p.x, p.ldx, k, ldx, m * tid / nt, m * (tid + 1) / nt, pack_out);
#pragma omp barrier
    }
    const int64_t t0 = n_tiles * tid / nt;
    const int64_t t1 = n_tiles * (tid + 1) / nt;
    for (int64_t i0 = 0; i0 < m; i0 += chunk_rows) {
      const int64_t i1 = min64(m, i0 + chunk_rows);
      for (int64_t tile = t0; tile < t1; ++tile) {
        const int64_t j = tile * kNr;
        const int64_t nr = min64(kNr, n - j);
        for (int64_t i = i0; i < i1; i += kMr) {
          const int64_t mr = min64(kMr, i1 - i);
          const Tile t{.x = x + i * ldx,
                       .ldx = ldx,
                       .w = w + j * k,
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

int64_t gemm_workspace_bytes_avx512(DType w_dtype, int64_t m, int64_t k) {
  if (w_dtype != DType::kBF16) return 0;
  return m * round_up(k, 32) * 2 + 64;
}

void gemm_avx512(const GemmParams& p, void* x_work, int threads) {
  switch (p.w_dtype) {
    case DType::kBF16: {
      auto* packed = static_cast<uint16_t*>(x_work);
      run<Bf16Ops>(p, packed, round_up(p.k, 32), packed, threads);
      return;
    }
    case DType::kF16:
      run<F16Ops>(p, p.x, p.ldx, nullptr, threads);
      return;
    default:
      run<F32Ops>(p, p.x, p.ldx, nullptr, threads);
      return;
  }
}

}  // namespace strata::kernels::cpu
