// AVX2 W4A16 GEMM for machines without AVX-512: each run of 8 weights decoded to fp32
// (q − 8)·d — exact, one FMA of the converted nibbles by d and −8·d — and 8-wide fp32 FMA
// against activations rounded to bf16 (so results match the AVX512-BF16 path up to
// summation order). Activations packed once per call (zero-padded to the blocks of
// kInt4TileK); up to 2 rows × one 4-row weight tile of ymm accumulators. For m above
// kW4PanelMinRows each tile is decoded once into a per-thread fp32 panel that every row
// block reads: the same values in the same order, so the same bits.
#include <immintrin.h>
#include <omp.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/avx2_lanes.h"
#include "kernels/cpu/gemm_w4a16.h"

namespace strata::kernels::cpu {
namespace {

constexpr int kMr = 2;
constexpr int kNr = kInt4TileRows;
constexpr int64_t kChunkBytes = 512 * 1024;
constexpr int64_t kPrefetchBytes = 2048;

using avx2::hsum;
using avx2::min64;
using avx2::round_bf16;
using avx2::round_up;

// Elements 8g .. 8g + 7 of run h of a 64-byte nibble block (words 8g..8g+7, field h; the
// weights at int4_run_offset(G, h, 8g) on) as fp32 (q − 8)·d. q·d is exact and so is the
// sum with −8·d, so the FMA rounds nothing.
inline __m256 decode8(const uint8_t* block, int g, int h, __m256 d, __m256 minus_8d) {
  const __m128i words = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16 * g));
  const __m256i q = _mm256_and_si256(_mm256_srli_epi32(_mm256_cvtepu16_epi32(words), 4 * h),
                                     _mm256_set1_epi32(15));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), d, minus_8d);
}

// d and −8·d broadcast for the first (0) and last (1) 16 weights of a run.
struct RunScales {
  __m256 d0, minus_8d0, d1, minus_8d1;
};

// Run h's scales from a block's spb fp16 scales (its groups in k order).
template <int G>
inline RunScales run_scales(const uint16_t* block_scales, int h) {
  const float first = _cvtsh_ss(block_scales[int4_run_offset(G, h, 0) / G]);
  const float last = _cvtsh_ss(block_scales[int4_run_offset(G, h, 16) / G]);
  return {_mm256_set1_ps(first), _mm256_set1_ps(-8.0f * first), _mm256_set1_ps(last),
          _mm256_set1_ps(-8.0f * last)};
}

struct Tile {
  const float* x;          // packed activations, row stride ldx (kb · 128, zero-padded)
  int64_t ldx;
  const uint8_t* tile;     // the packed tile (ops.h, kTiled): superblocks of scales, nibbles
  const float* panel;      // the same weights decoded: [kb][rows][128] fp32, or nullptr
  int64_t kb;
  float* y;
  int64_t ldy;
  const float* bias;
  bool accumulate;
};

// One block b of column c for every row: runs h = 0..3 of 32 weights, each with its
// group's scale (for G = 32 a run's first 16 and last 16 weights are two groups), in
// 8-wide steps.
template <int MR, int NR, int G, bool Panel>
inline void micro_block(const Tile& t, int64_t b, int c, __m256 (&acc)[MR][NR]) {
  const int64_t bc = b * NR + c;  // (block, row): its place in the panel
  const uint8_t* block = t.tile + int4_nibbles_at(b, c, NR, G);
  const auto* block_scales =
      reinterpret_cast<const uint16_t*>(t.tile + int4_scales_at(b, c, NR, G));
  if (!Panel && MR == 1) {
    _mm_prefetch(reinterpret_cast<const char*>(block) + kPrefetchBytes, _MM_HINT_T0);
  }
#pragma GCC unroll 4
  for (int h = 0; h < 4; ++h) {
    // The scales of the run's first and last 16 weights (one group unless G = 32).
    RunScales sc{};
    if constexpr (!Panel) sc = run_scales<G>(block_scales, h);
#pragma GCC unroll 4
    for (int g = 0; g < 4; ++g) {
      __m256 w;
      if constexpr (Panel) {
        w = _mm256_loadu_ps(t.panel + bc * kInt4TileK + 32 * h + 8 * g);
      } else {
        w = decode8(block, g, h, g < 2 ? sc.d0 : sc.d1, g < 2 ? sc.minus_8d0 : sc.minus_8d1);
      }
      const int64_t kk = b * kInt4TileK + int4_run_offset(G, h, 8 * g);
#pragma GCC unroll 2
      for (int r = 0; r < MR; ++r) {
        acc[r][c] = _mm256_fmadd_ps(_mm256_loadu_ps(t.x + r * t.ldx + kk), w, acc[r][c]);
      }
    }
  }
}

template <int MR, int NR, int G, bool Panel>
void micro(const Tile& t) {
  // Every index into acc must be a constant after unrolling, or GCC keeps it in memory.
  __m256 acc[MR][NR];
#pragma GCC unroll 2
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < NR; ++c) acc[r][c] = _mm256_setzero_ps();
  for (int64_t b = 0; b < t.kb; ++b) {
#pragma GCC unroll 4
    for (int c = 0; c < NR; ++c) micro_block<MR, NR, G, Panel>(t, b, c, acc);
  }
#pragma GCC unroll 2
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
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

template <int G, bool Panel>
MicroFn pick(int64_t mr, int64_t nr) {
  static constexpr MicroFn table[kMr][kNr] = {
      {micro<1, 1, G, Panel>, micro<1, 2, G, Panel>, micro<1, 3, G, Panel>, micro<1, 4, G, Panel>},
      {micro<2, 1, G, Panel>, micro<2, 2, G, Panel>, micro<2, 3, G, Panel>, micro<2, 4, G, Panel>}};
  return table[mr - 1][nr - 1];
}

// A tile's blocks decoded into the panel [kb][rows][128].
template <int G>
void build_panel(const uint8_t* tile, int64_t kb, int64_t rows, float* panel) {
  for (int64_t i = 0; i < kb * rows; ++i) {
    const int64_t b = i / rows, c = i % rows;
    const uint8_t* nibbles = tile + int4_nibbles_at(b, c, rows, G);
    const auto* scales = reinterpret_cast<const uint16_t*>(tile + int4_scales_at(b, c, rows, G));
    for (int h = 0; h < 4; ++h) {
      const RunScales sc = run_scales<G>(scales, h);
      for (int g = 0; g < 4; ++g) {
        _mm256_storeu_ps(panel + i * kInt4TileK + 32 * h + 8 * g,
                         decode8(nibbles, g, h, g < 2 ? sc.d0 : sc.d1,
                                 g < 2 ? sc.minus_8d0 : sc.minus_8d1));
      }
    }
  }
}

// Activation rows [r0, r1) rounded to bf16 (kept in fp32 lanes) into out [m][kp], each
// row zero-padded from k to kp.
void pack_x(const float* x, int64_t ldx, int64_t k, int64_t kp, int64_t r0, int64_t r1,
            float* out) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* src = x + r * ldx;
    float* dst = out + r * kp;
    const int64_t k_full = k / 8 * 8;
    for (int64_t kk = 0; kk < k_full; kk += 8) {
      _mm256_storeu_ps(dst + kk, round_bf16(_mm256_loadu_ps(src + kk)));
    }
    std::memset(dst + k_full, 0, static_cast<size_t>(kp - k_full) * sizeof(float));
    for (int64_t kk = k_full; kk < k; ++kk) {
      const __m256 v = round_bf16(_mm256_set1_ps(src[kk]));
      dst[kk] = _mm256_cvtss_f32(v);
    }
  }
}

// Workspace: the activations [m][kp] in fp32, then one panel [kNr · kb][128] per thread.
int64_t x_bytes(int64_t m, int64_t k) {
  return round_up(m * int4_row_blocks(k) * kInt4TileK * 4, 64);
}
int64_t panel_bytes(int64_t k) { return kNr * int4_row_blocks(k) * kInt4TileK * 4; }

template <int G>
void run(const GemmW4A16Params& p, void* workspace, int threads) {
  const int64_t m = p.m, n = p.n, kb = int4_row_blocks(p.k), kp = kb * kInt4TileK;
  const int64_t n_tiles = (n + kNr - 1) / kNr;
  const int64_t tile_stride = int4_tile_bytes(kNr, p.k, G);
  auto* xp = static_cast<float*>(workspace);
  auto* panels = reinterpret_cast<float*>(static_cast<char*>(workspace) + x_bytes(m, p.k));
  const bool use_panel = m > kW4PanelMinRows;
  int64_t chunk_rows = kChunkBytes / (kp * 4) / kMr * kMr;
  if (chunk_rows < kMr) chunk_rows = kMr;
  if (n_tiles < 2 * threads || m * n * p.k < (1 << 16)) threads = 1;

#pragma omp parallel num_threads(threads)
  {
    const int tid = omp_get_thread_num();
    const int nt = omp_get_num_threads();
    pack_x(p.x, p.ldx, p.k, kp, m * tid / nt, m * (tid + 1) / nt, xp);
#pragma omp barrier
    float* panel = use_panel ? panels + tid * panel_bytes(p.k) / 4 : nullptr;
    const int64_t t0 = n_tiles * tid / nt, t1 = n_tiles * (tid + 1) / nt;
    for (int64_t i0 = 0; i0 < m; i0 += chunk_rows) {
      const int64_t i1 = min64(m, i0 + chunk_rows);
      for (int64_t tile = t0; tile < t1; ++tile) {
        const int64_t j = tile * kNr, nr = min64(kNr, n - j);
        const auto* base = static_cast<const uint8_t*>(p.w) + tile * tile_stride;
        if (use_panel) build_panel<G>(base, kb, nr, panel);
        for (int64_t i = i0; i < i1; i += kMr) {
          const Tile t{.x = xp + i * kp,
                       .ldx = kp,
                       .tile = base,
                       .panel = panel,
                       .kb = kb,
                       .y = p.y + i * p.ldy + j,
                       .ldy = p.ldy,
                       .bias = p.bias != nullptr ? p.bias + j : nullptr,
                       .accumulate = p.accumulate};
          const int64_t mr = min64(kMr, i1 - i);
          (use_panel ? pick<G, true>(mr, nr) : pick<G, false>(mr, nr))(t);
        }
      }
    }
  }
}

}  // namespace

int64_t gemm_w4a16_workspace_bytes_avx2(int64_t m, int64_t k, int threads) {
  return x_bytes(m, k) + (m > kW4PanelMinRows ? threads * panel_bytes(k) : 0);
}

void gemm_w4a16_avx2(const GemmW4A16Params& p, void* workspace, int threads) {
  switch (p.group_size) {
    case 32: run<32>(p, workspace, threads); return;
    case 64: run<64>(p, workspace, threads); return;
    default: run<128>(p, workspace, threads); return;
  }
}

}  // namespace strata::kernels::cpu
