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
// Bytes of a tile of `rows` rows: the nibble blocks, then the scales padded to 64 bytes.
static inline int64_t int4_tile_bytes(int64_t rows, int64_t k, int group_size) {
  const int64_t kb = int4_row_blocks(k);
  const int64_t scale_bytes = rows * kb * int4_block_scales(group_size) * 2;
  return rows * kb * 64 + (scale_bytes + 63) / 64 * 64;
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
