// AVX-512 W4A16 GEMM: int4 weights unpacked to bf16 (q − 8) in registers, activations
// rounded to bf16 once per call (and put in the weight runs' order), two chained vdpbf16ps
// per 64 weights and one fp32 FMA by their scales (ops.h, GemmW4A16Params; for G = 32 the
// run layout keeps each group in its own 8 lanes). One register-blocked microkernel
// (up to 4 activation rows × one 4-row weight tile of zmm accumulators) serves every m.
//
// Unpacking: a row's 64-byte nibble block is 32 words holding four runs of 32 weights in
// their 4-bit fields (ops.h, kTiled); shifting the words right by 4h and permuting them
// through a 32-entry bf16 table (vpermw reads bits [4:0], so the table repeats its 16
// entries and no mask is needed) gives run h: one load, three shifts and four permutes
// per 128 weights. Decode (m ≤ kW4PanelMinRows) does this in the microkernel, streaming
// each thread's tiles once; larger m writes each tile's runs into a per-thread panel once
// and the microkernel loads them from there for every row block: the same vectors, so the
// same bits.
//
// Loop nest per thread, as gemm_avx512.cpp: its own contiguous range of tiles (one
// sequential stream: ops.h, kTiled); activations in chunks that stay in L2; for each tile
// every 4-row block of the chunk.
// GCC 12 reports the deliberately undefined lanes inside its own AVX-512 intrinsic headers
// (_mm512_undefined_*) as uninitialized; the warning concerns the header, not this file.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#include <omp.h>

#include <cstdint>

#include "kernels/cpu/gemm_w4a16.h"

namespace strata::kernels::cpu {
namespace {

constexpr int kMr = 4;
constexpr int kNr = kInt4TileRows;  // a microkernel tile is one packed tile
// Activation bytes per chunk: half of the 1 MiB L2, leaving room for a tile's panel.
constexpr int64_t kChunkBytes = 512 * 1024;
// Decode streams each thread's tiles front to back; prefetch this far ahead of each load
// (as gemm_avx512.cpp's kTiledPrefetchBytes).
constexpr int64_t kPrefetchBytes = 2048;

inline int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }
inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// The horizontal-sum order of gemm_avx512.cpp: lanes (i, i+8), (i, i+4), (i, i+2), (i, i+1).
inline float hsum(__m512 v) {
  const __m256 lo = _mm512_castps512_ps256(v);
  const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
  const __m256 s8 = _mm256_add_ps(lo, hi);
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  const __m128 s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
  return _mm_cvtss_f32(s1);
}

// bf16 bits of (i & 15) − 8: -8, -7, ..., 7, twice.
alignas(64) const uint16_t kQToBf16[32] = {
    0xC100, 0xC0E0, 0xC0C0, 0xC0A0, 0xC080, 0xC040, 0xC000, 0xBF80,
    0x0000, 0x3F80, 0x4000, 0x4040, 0x4080, 0x40A0, 0x40C0, 0x40E0,
    0xC100, 0xC0E0, 0xC0C0, 0xC0A0, 0xC080, 0xC040, 0xC000, 0xBF80,
    0x0000, 0x3F80, 0x4000, 0x4040, 0x4080, 0x40A0, 0x40C0, 0x40E0};

// Run h of a nibble block loaded into `words` (its weights: int4_run_offset).
inline __m512i unpack_run(__m512i words, __m512i table, unsigned h) {
  return _mm512_permutexvar_epi16(_mm512_srli_epi16(words, 4 * h), table);
}

struct Tile {
  const uint16_t* x;       // first activation row of the block: bf16, row stride ldx
  int64_t ldx;
  const uint8_t* tile;     // the packed tile (ops.h, kTiled): superblocks of scales, nibbles
  const uint16_t* panel;   // the same weights unpacked: [kb][rows][128] bf16, or nullptr
  int64_t kb;
  float* y;                // y[row][col], row stride ldy
  int64_t ldy;
  const float* bias;       // bias for the tile's first column, or nullptr
  bool accumulate;
};

// The block's NR·spb scales (≤ 16) as fp32 in d[c·spb + s]. The empty asm makes the
// compiler read them back from memory: each then feeds its FMA as an embedded broadcast (a
// load), where GCC would otherwise broadcast lanes of the register with vpermd and compete
// with the unpacking's permutes for the shuffle units.
template <int Count>
inline void load_scales(const uint16_t* scales, float* d) {
  static_assert(Count <= 16);
  const __m256i h = _mm256_maskz_loadu_epi16(_cvtu32_mask16((1u << Count) - 1u), scales);
  _mm512_store_ps(d, _mm512_cvtph_ps(h));
  asm("" : "+m"(*reinterpret_cast<float(*)[16]>(d)));
}

// The two weight vectors of column c for weights [64·half, 64·half + 64) of block b: from
// the panel, or unpacked from the block's nibbles (prefetching further down the stream).
template <int NR, bool Panel, bool Prefetch>
inline void load_weights(const Tile& t, const uint8_t* nibbles, int64_t b, int c, int half,
                         __m512i table, __m512i& w0, __m512i& w1) {
  if constexpr (Panel) {
    const uint16_t* pp = t.panel + ((b * NR + c) * 4 + 2 * half) * 32;
    w0 = _mm512_loadu_si512(pp);
    w1 = _mm512_loadu_si512(pp + 32);
  } else {
    const uint8_t* np = nibbles + c * 64;
    if (Prefetch && half == 0) {
      _mm_prefetch(reinterpret_cast<const char*>(np) + kPrefetchBytes, _MM_HINT_T0);
    }
    const __m512i words = _mm512_loadu_si512(np);
    w0 = unpack_run(words, table, 2 * half);
    w1 = unpack_run(words, table, 2 * half + 1);
  }
}

// acc + the dot product of one block half (64 weights: runs x0·w0 and x1·w1, chained in
// one vdpbf16ps accumulator from zero) times its scales d: d[0] in every lane for G ≥ 64;
// for G = 32 d[0] in lanes 0-7 and d[1] in lanes 8-15, the lanes where the run layout
// (int4_run_offset) puts each group's products.
template <int G>
inline __m512 scaled_dot(__m512 acc, __m512i x0, __m512i x1, __m512i w0, __m512i w1,
                         const float* d) {
  const __m512 s = _mm512_dpbf16_ps(_mm512_dpbf16_ps(_mm512_setzero_ps(), (__m512bh)x0,
                                                     (__m512bh)w0),
                                    (__m512bh)x1, (__m512bh)w1);
  __m512 scale = _mm512_set1_ps(d[0]);
  if constexpr (G == 32) scale = _mm512_mask_broadcastss_ps(scale, 0xFF00, _mm_load_ss(d + 1));
  return _mm512_fmadd_ps(s, scale, acc);
}

// MR activation rows × NR weight rows over all kb blocks, a block half at a time. The
// accumulation order of each (row, column) is the same for every MR, NR and for both weight
// sources.
template <int MR, int NR, int G, bool Panel>
void micro(const Tile& t) {
  constexpr int kSpb = kInt4TileK / G;
  constexpr bool kPrefetch = !Panel && MR <= 2;
  const __m512i table = _mm512_load_si512(kQToBf16);
  // Every index into acc must be a constant after unrolling, or GCC keeps it in memory.
  __m512 acc[MR][NR];
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < NR; ++c) acc[r][c] = _mm512_setzero_ps();
  for (int64_t b = 0; b < t.kb; ++b) {
    const uint8_t* scales = t.tile + int4_scales_at(b, 0, NR, G);
    const uint8_t* nibbles = t.tile + int4_nibbles_at(b, 0, NR, G);
    alignas(64) float d[16];
    load_scales<NR * kSpb>(reinterpret_cast<const uint16_t*>(scales), d);
    if (kPrefetch) {
      _mm_prefetch(reinterpret_cast<const char*>(scales) + kPrefetchBytes, _MM_HINT_T0);
    }
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
      __m512i xv[MR][2];
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) {
        const uint16_t* xp = t.x + r * t.ldx + b * kInt4TileK + 64 * half;
        xv[r][0] = _mm512_loadu_si512(xp);
        xv[r][1] = _mm512_loadu_si512(xp + 32);
      }
#pragma GCC unroll 4
      for (int c = 0; c < NR; ++c) {
        __m512i w0, w1;
        load_weights<NR, Panel, kPrefetch>(t, nibbles, b, c, half, table, w0, w1);
#pragma GCC unroll 4
        for (int r = 0; r < MR; ++r) {
          acc[r][c] = scaled_dot<G>(acc[r][c], xv[r][0], xv[r][1], w0, w1,
                                    d + c * kSpb + half * kSpb / 2);
        }
      }
    }
  }
#pragma GCC unroll 4
  for (int c = 0; c < NR; ++c) {
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
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
      {micro<2, 1, G, Panel>, micro<2, 2, G, Panel>, micro<2, 3, G, Panel>, micro<2, 4, G, Panel>},
      {micro<3, 1, G, Panel>, micro<3, 2, G, Panel>, micro<3, 3, G, Panel>, micro<3, 4, G, Panel>},
      {micro<4, 1, G, Panel>, micro<4, 2, G, Panel>, micro<4, 3, G, Panel>, micro<4, 4, G, Panel>}};
  return table[mr - 1][nr - 1];
}

// A tile's nibble blocks unpacked into the panel [kb][rows][128].
template <int G>
void build_panel(const uint8_t* tile, int64_t kb, int64_t rows, uint16_t* panel) {
  const __m512i table = _mm512_load_si512(kQToBf16);
  for (int64_t b = 0; b < kb; ++b) {
    const uint8_t* nibbles = tile + int4_nibbles_at(b, 0, rows, G);  // the rows back to back
    for (int64_t c = 0; c < rows; ++c) {
      const __m512i words = _mm512_loadu_si512(nibbles + c * 64);
      uint16_t* out = panel + (b * rows + c) * kInt4TileK;
      for (unsigned h = 0; h < 4; ++h) {
        _mm512_storeu_si512(out + 32 * h, unpack_run(words, table, h));
      }
    }
  }
}

// Rounds activation rows [r0, r1) to bf16 (round to nearest even) into x_out [m][kp],
// zero padding each row from k to kp, in the order of the weight runs (int4_run_offset):
// natural for G ≥ 64; for G = 32 each 64 as [0, 16) [32, 48) | [16, 32) [48, 64).
template <int G>
void pack_bf16(const float* x, int64_t ldx, int64_t k, int64_t kp, int64_t r0, int64_t r1,
               uint16_t* x_out) {
  // Source offsets of the 16-float quarters of each output pair of 32.
  constexpr int kLo0 = 0, kHi0 = G == 32 ? 32 : 16, kLo1 = G == 32 ? 16 : 32, kHi1 = 48;
  auto load16 = [k](const float* src, int64_t at) {
    const int64_t rem = min64(16, k - at > 0 ? k - at : 0);
    return _mm512_maskz_loadu_ps(_cvtu32_mask16((1u << rem) - 1u), src + at);
  };
  for (int64_t r = r0; r < r1; ++r) {
    const float* src = x + r * ldx;
    uint16_t* dst = x_out + r * kp;
    for (int64_t kk = 0; kk < kp; kk += 64) {
      _mm512_storeu_si512(dst + kk, (__m512i)_mm512_cvtne2ps_pbh(load16(src, kk + kHi0),
                                                                 load16(src, kk + kLo0)));
      _mm512_storeu_si512(dst + kk + 32, (__m512i)_mm512_cvtne2ps_pbh(load16(src, kk + kHi1),
                                                                      load16(src, kk + kLo1)));
    }
  }
}

// Workspace: the bf16 activations [m][kp], then one panel [kNr · kb][128] per thread.
int64_t x_bytes(int64_t m, int64_t k) {
  return round_up(m * int4_row_blocks(k) * kInt4TileK * 2, 64);
}
int64_t panel_bytes(int64_t k) { return kNr * int4_row_blocks(k) * kInt4TileK * 2; }

template <int G>
void run(const GemmW4A16Params& p, void* workspace, int threads) {
  const int64_t m = p.m, n = p.n, kb = int4_row_blocks(p.k), kp = kb * kInt4TileK;
  const int64_t n_tiles = (n + kNr - 1) / kNr;
  const int64_t tile_stride = int4_tile_bytes(kNr, p.k, G);
  auto* x16 = static_cast<uint16_t*>(workspace);
  auto* panels = reinterpret_cast<uint16_t*>(static_cast<char*>(workspace) + x_bytes(m, p.k));
  const bool use_panel = m > kW4PanelMinRows;
  int64_t chunk_rows = kChunkBytes / (kp * 2) / kMr * kMr;
  if (chunk_rows < kMr) chunk_rows = kMr;
  // Small problems do not pay for waking a second thread.
  if (n_tiles < 2 * threads || m * n * p.k < (1 << 16)) threads = 1;

#pragma omp parallel num_threads(threads)
  {
    const int tid = omp_get_thread_num();
    const int nt = omp_get_num_threads();
    pack_bf16<G>(p.x, p.ldx, p.k, kp, m * tid / nt, m * (tid + 1) / nt, x16);
#pragma omp barrier
    uint16_t* panel = use_panel ? panels + tid * panel_bytes(p.k) / 2 : nullptr;
    const int64_t t0 = n_tiles * tid / nt, t1 = n_tiles * (tid + 1) / nt;
    for (int64_t i0 = 0; i0 < m; i0 += chunk_rows) {
      const int64_t i1 = min64(m, i0 + chunk_rows);
      for (int64_t tile = t0; tile < t1; ++tile) {
        const int64_t j = tile * kNr, nr = min64(kNr, n - j);
        const auto* base = static_cast<const uint8_t*>(p.w) + tile * tile_stride;
        if (use_panel) build_panel<G>(base, kb, nr, panel);
        for (int64_t i = i0; i < i1; i += kMr) {
          const int64_t mr = min64(kMr, i1 - i);
          const Tile t{.x = x16 + i * kp,
                       .ldx = kp,
                       .tile = base,
                       .panel = panel,
                       .kb = kb,
                       .y = p.y + i * p.ldy + j,
                       .ldy = p.ldy,
                       .bias = p.bias != nullptr ? p.bias + j : nullptr,
                       .accumulate = p.accumulate};
          (use_panel ? pick<G, true>(mr, nr) : pick<G, false>(mr, nr))(t);
        }
      }
    }
  }
}

}  // namespace

int64_t gemm_w4a16_workspace_bytes_avx512(int64_t m, int64_t k, int threads) {
  return x_bytes(m, k) + (m > kW4PanelMinRows ? threads * panel_bytes(k) : 0);
}

void gemm_w4a16_avx512(const GemmW4A16Params& p, void* workspace, int threads) {
  switch (p.group_size) {
    case 32: run<32>(p, workspace, threads); return;
    case 64: run<64>(p, workspace, threads); return;
    default: run<128>(p, workspace, threads); return;
  }
}

}  // namespace strata::kernels::cpu
