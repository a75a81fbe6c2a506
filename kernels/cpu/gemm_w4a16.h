// CPU W4A16 GEMM (kernels/ops.h, GemmW4A16Params): the dispatcher and the packing live in
// gemm_w4a16.cpp, each ISA path in its own file; all three read Int4Layout::kTiled.
//
// Batch invariance, as gemm.h: each output element is one reduction over k in blocks of
// kInt4TileK, in an order fixed by k; tiling over rows, weight rows and threads, and
// whether a tile's weights are unpacked in registers or from a panel, only change which
// core computes an element, never how. So y[i][j] has the same bits whatever m, the other
// rows, the thread count, or where row j falls in a tile.
#pragma once

#include <cstdint>

#include "kernels/ops.h"

namespace strata::kernels::cpu {

void gemm_w4a16(const GemmW4A16Params& p);
// Bytes of GemmW4A16Params::workspace for the path cpu_isa() picks now.
int64_t gemm_w4a16_workspace_bytes(int64_t m, int64_t k);
// kBlocks → kTiled (see ops.h); returns kTiled.
Int4Layout pack_w4a16(const PackW4A16Params& p);

// ---- kTiled geometry (ops.h). `static`: the ISA files include this (see isa.h). --------

// Blocks of kInt4TileK weights per row (k padded up).
static inline int64_t int4_row_blocks(int64_t k) { return (k + kInt4TileK - 1) / kInt4TileK; }
// fp16 scales per row per block: 4, 2 or 1.
static inline int int4_block_scales(int group_size) { return kInt4TileK / group_size; }
// Blocks per superblock: those whose scales for 4 rows fill one 64-byte line (2, 4 or 8;
// each row's scales for a superblock take 16 bytes whatever G). Why scales sit in the
// stream: with a tile's scales all after its nibbles, the nibble stream skipped them once
// per tile, the hardware prefetcher lost it each time, and G = 32 decode from DRAM ran at
// half the speed it has now (measured on Zen 4; the larger groups' short scale sections
// hurt less).
static inline int int4_superblock_blocks(int group_size) { return group_size / 16; }
// Bytes from one superblock of a `rows`-row tile to the next: its scale line, then its
// blocks' nibbles.
static inline int64_t int4_superblock_bytes(int64_t rows, int group_size) {
  return 64 + int4_superblock_blocks(group_size) * rows * 64;
}
// Byte offsets within a `rows`-row tile of block b's scales for row c (128/G fp16) and of
// its 64-byte nibble block for row c.
static inline int64_t int4_scales_at(int64_t b, int64_t c, int64_t rows, int group_size) {
  const int s = int4_superblock_blocks(group_size);
  return b / s * int4_superblock_bytes(rows, group_size) +
         (b % s * rows + c) * int4_block_scales(group_size) * 2;
}
static inline int64_t int4_nibbles_at(int64_t b, int64_t c, int64_t rows, int group_size) {
  const int s = int4_superblock_blocks(group_size);
  return b / s * int4_superblock_bytes(rows, group_size) + 64 + (b % s * rows + c) * 64;
}
// Bytes of a tile of `rows` rows: a scale line per superblock, 64 bytes per row-block.
static inline int64_t int4_tile_bytes(int64_t rows, int64_t k, int group_size) {
  const int64_t kb = int4_row_blocks(k);
  const int s = int4_superblock_blocks(group_size);
  return (kb + s - 1) / s * 64 + kb * rows * 64;
}
// Offset within its block of element e (0..31) of run h (0..3), the 4-bit field h of word
// e (ops.h, kTiled): 32h + e, except for G = 32, where each 64-weight half pairs 16 weights
// of its first group with 16 of its second: run 2v + u holds 64v + 16u + [0, 16) and then
// 64v + 32 + 16u + [0, 16). (So a vdpbf16ps over a run keeps group A in lanes 0-7 and group
// B in lanes 8-15, and the two runs of a half share one accumulator and one FMA by the
// scales.) Runs of 16 keep every aligned 8 elements consecutive.
static inline int int4_run_offset(int group_size, int h, int e) {
  if (group_size != 32) return 32 * h + e;
  return 64 * (h / 2) + 16 * (h % 2) + (e < 16 ? e : 32 + e - 16);
}
// The inverse: run h and element e of block offset o (0..127).
static inline void int4_run_of(int group_size, int o, int* h, int* e) {
  if (group_size != 32) {
    *h = o / 32, *e = o % 32;
    return;
  }
  const int v = o / 64, p = o % 64, second = p >= 32 ? 1 : 0, q = p - 32 * second;
  *h = 2 * v + q / 16;
  *e = 16 * second + q % 16;
}

// Bytes of the tiles holding rows [0, rows), where `rows` is a multiple of kInt4TileRows
// (where that row's tile starts) or n (the whole matrix).
static inline int64_t int4_rows_bytes(int64_t rows, int64_t k, int group_size) {
  const int64_t full = rows / kInt4TileRows, rest = rows % kInt4TileRows;
  return full * int4_tile_bytes(kInt4TileRows, k, group_size) +
         (rest > 0 ? int4_tile_bytes(rest, k, group_size) : 0);
}

// ---- The ISA paths ----------------------------------------------------------------------
// workspace: [gemm_w4a16_workspace_bytes_<isa>(m, k, threads)] bytes, 64-byte aligned: the
// activations rounded to bf16 once per call, then (for m > kW4PanelMinRows) one panel of
// dequantized weights per thread.
inline constexpr int64_t kW4PanelMinRows = 8;
int64_t gemm_w4a16_workspace_bytes_avx512(int64_t m, int64_t k, int threads);
void gemm_w4a16_avx512(const GemmW4A16Params& p, void* workspace, int threads);
int64_t gemm_w4a16_workspace_bytes_avx2(int64_t m, int64_t k, int threads);
void gemm_w4a16_avx2(const GemmW4A16Params& p, void* workspace, int threads);
void gemm_w4a16_scalar(const GemmW4A16Params& p, int threads);

}  // namespace strata::kernels::cpu
