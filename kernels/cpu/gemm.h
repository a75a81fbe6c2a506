// CPU GEMM y = x·Wᵀ: the dispatcher picks the ISA path; each path lives in its own file.
//
// Batch invariance: every path computes each output element y[i][j] with one reduction
// whose order depends only on k — one SIMD accumulator walked over k in fixed-width chunks
// (masked or zero-padded tail), then a fixed-order horizontal sum, then + bias, then + y.
// Tiling over rows, weight rows and threads only changes which elements a core computes,
// never how, so y[i][j] is bit-identical whatever m, the other rows or the thread count.
#pragma once

#include <cstdint>

#include "kernels/ops.h"

namespace strata::kernels::cpu {

void gemm(const GemmParams& p);
// Bytes of GemmParams::workspace for the ISA path cpu_isa() picks now.
int64_t gemm_workspace_bytes(DType w_dtype, int64_t m, int64_t k);

// Writes a row-major matrix in WeightLayout::kTiled (see ops.h), which all three ISA paths
// read; returns kTiled.
WeightLayout pack_weights(const PackWeightsParams& p);

// Element offset of (row j, column kk) in a kTiled [n][k] matrix (see ops.h). `static`: the
// ISA files include this (see isa.h on linkage).
static inline int64_t tiled_offset(int64_t j, int64_t kk, int64_t n, int64_t k) {
  const int64_t first = j / kWeightTileRows * kWeightTileRows;
  const int64_t rows = n - first < kWeightTileRows ? n - first : kWeightTileRows;
  const int64_t c0 = kk / kWeightTileChunk * kWeightTileChunk;
  const int64_t len = k - c0 < kWeightTileChunk ? k - c0 : kWeightTileChunk;
  return first * k + c0 * rows + (j - first) * len + (kk - c0);
}

// The ISA paths. x_work: caller-owned scratch of gemm_workspace_bytes_<isa> bytes (64-byte
// aligned) for the activations converted once per call.
int64_t gemm_workspace_bytes_avx512(DType w_dtype, int64_t m, int64_t k);
void gemm_avx512(const GemmParams& p, void* x_work, int threads);
int64_t gemm_workspace_bytes_avx2(int64_t m, int64_t k);
void gemm_avx2(const GemmParams& p, void* x_work, int threads);
void gemm_scalar(const GemmParams& p, int threads);

}  // namespace strata::kernels::cpu
