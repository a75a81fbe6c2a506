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

// The ISA paths. x_work: caller-owned scratch of gemm_workspace_bytes(p) bytes (64-byte
// aligned) for the activations converted once per call.
size_t gemm_workspace_bytes_avx512(const GemmParams& p);
void gemm_avx512(const GemmParams& p, void* x_work, int threads);
size_t gemm_workspace_bytes_avx2(const GemmParams& p);
void gemm_avx2(const GemmParams& p, void* x_work, int threads);
void gemm_scalar(const GemmParams& p, int threads);

}  // namespace strata::kernels::cpu
