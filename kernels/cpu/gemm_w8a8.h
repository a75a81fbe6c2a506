// CPU W8A8 GEMM (kernels/ops.h, W8A8): the packed layout's geometry, the per-call activation
// workspace, and the ISA paths, each in its own file.
//
// Every path computes an output element the same way: exact int32 sums per scale group, then
// ops.h's fp32 epilogue, op for op (these files build with -ffp-contract=off so that no
// multiply and add fuse unless written as an fma). The paths therefore agree bit for bit
// with each other and with any m, tiling or thread count: batch invariance is exact.
#pragma once

#include <cstdint>

#include "kernels/ops.h"

namespace strata::kernels::cpu {

// Where things are in a kInt8Packed buffer (ops.h). `static`: the ISA files include this
// header (see isa.h on linkage).
struct W8Layout {
  int64_t n = 0, k = 0;
  int64_t groups = 1;        // scale groups per row
  int64_t group_k = 0;       // k per full group (per channel: k rounded up to 4)
  int64_t tiles = 0;         // of kInt8TileCols columns
  int64_t tile_bytes = 0;
  int64_t group_stride = 0;  // bytes from one full group to the next, scales included
};

inline constexpr int64_t kW8BlockBytes = 4 * kInt8TileCols;  // 4 k × 64 columns
inline constexpr int64_t kW8ScaleBytes = 4 * kInt8TileCols;  // 64 fp32 scales

static inline W8Layout w8_layout(int64_t n, int64_t k, int64_t group_size) {
  W8Layout l;
  l.n = n;
  l.k = k;
  l.group_k = group_size == 0 ? (k + 3) / 4 * 4 : group_size;
  l.groups = (k + l.group_k - 1) / l.group_k;
  l.tiles = (n + kInt8TileCols - 1) / kInt8TileCols;
  l.tile_bytes = (k + 3) / 4 * kW8BlockBytes + l.groups * kW8ScaleBytes;
  l.group_stride = l.group_k / 4 * kW8BlockBytes + kW8ScaleBytes;
  return l;
}

// Blocks of 4 k in group g (the last group may be shorter).
static inline int64_t w8_group_blocks(const W8Layout& l, int64_t g) {
  const int64_t begin = g * l.group_k;
  const int64_t len = l.k - begin < l.group_k ? l.k - begin : l.group_k;
  return (len + 3) / 4;
}

// The activations as every path reads them, prepared once per call in the caller's
// workspace: rows copied to a 64-byte stride and zero-padded (so a path reads whole blocks
// of 4 without a tail), and per (row, group) −128 · Σ x, which the VNNI path starts its
// accumulators from to cancel the +128 stored in the weights.
struct W8Activations {
  const int8_t* x = nullptr;     // [m, ldx], zero past k
  int64_t ldx = 0;
  const int32_t* corr = nullptr;  // [m, groups]
};

int64_t w8a8_packed_bytes(int64_t n, int64_t k, int64_t group_size);
WeightLayout pack_w8a8(const PackW8A8Params& p);
int64_t gemm_w8a8_workspace_bytes(int64_t m, int64_t n, int64_t k, int64_t group_size);
void gemm_w8a8(const GemmW8A8Params& p);

void gemm_w8a8_avx512(const GemmW8A8Params& p, const W8Layout& l, const W8Activations& a,
                      int threads);
void gemm_w8a8_avx2(const GemmW8A8Params& p, const W8Layout& l, const W8Activations& a,
                    int threads);
void gemm_w8a8_scalar(const GemmW8A8Params& p, const W8Layout& l, const W8Activations& a,
                      int threads);

// Work split shared by the paths: (tile, row chunk) items, tile-major, each thread a
// contiguous range. Rows split only when there are fewer tiles than threads.
struct W8Split {
  int64_t row_chunk = 0;   // rows per item (a multiple of the path's row block)
  int64_t row_chunks = 1;  // items per tile
  int threads = 1;
};
static inline W8Split w8_split(const GemmW8A8Params& p, const W8Layout& l, int64_t row_block,
                               int threads) {
  W8Split s;
  s.row_chunks = 1;
  if (l.tiles < threads && p.m > row_block) {
    const int64_t want = (threads + l.tiles - 1) / l.tiles;
    const int64_t most = (p.m + row_block - 1) / row_block;
    s.row_chunks = want < most ? want : most;
  }
  const int64_t rows = (p.m + s.row_chunks - 1) / s.row_chunks;
  s.row_chunk = (rows + row_block - 1) / row_block * row_block;
  s.row_chunks = (p.m + s.row_chunk - 1) / s.row_chunk;
  const int64_t items = l.tiles * s.row_chunks;
  s.threads = items < threads ? static_cast<int>(items) : threads;
  // Small problems do not pay for waking a second thread.
  if (p.m * p.n * p.k < (1 << 16)) s.threads = 1;
  return s;
}

}  // namespace strata::kernels::cpu
