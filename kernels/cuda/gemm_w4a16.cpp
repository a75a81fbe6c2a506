// The CUDA W4A16 GEMM's host side: argument checks, the path plan_gemm_w4a16 picks, and
// the cuBLAS calls of larger m (see plan/gemm_w4a16_plan.h). CPU twin:
// kernels/cpu/gemm_w4a16.cpp.
//
// Larger m: for each slice of kW4DequantRows weight rows, the exact bf16 split hi + lo of
// the slice, then y[:, slice] = x·hiᵀ (+ y) and y[:, slice] += x·loᵀ, both cublasGemmEx in
// the "TN" form of gemm.cpp with fp32 output and CUBLAS_COMPUTE_32F: every product is exact
// and the sums are fp32, as on the CPU, in cuBLAS's order.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/check.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/launchers.h"
#include "kernels/quant_int4.h"

namespace strata::kernels::cuda {
namespace {

void check_or_abort(const std::string& error) {
  if (error.empty()) return;
  std::fprintf(stderr, "strata: %s\n", error.c_str());
  std::abort();
}

// y[:, j0 : j0 + rows] (+)= x16 · w16ᵀ for one bf16 slice [rows, k].
void gemm_slice(const GemmW4A16Params& p, const void* x16, const void* w16, int64_t j0,
                int64_t rows, float beta) {
  const float alpha = 1.0f;
  const int k = static_cast<int>(p.k);
  STRATA_CUBLAS_CHECK(cublasGemmEx(context().cublas, CUBLAS_OP_T, CUBLAS_OP_N,
                                   static_cast<int>(rows), static_cast<int>(p.m), k, &alpha, w16,
                                   CUDA_R_16BF, k, x16, CUDA_R_16BF, k, &beta, p.y + j0,
                                   CUDA_R_32F, static_cast<int>(p.ldy), CUBLAS_COMPUTE_32F,
                                   CUBLAS_GEMM_DEFAULT));
}

}  // namespace

void gemm_w4a16(const GemmW4A16Params& p) {
  check_or_abort(int4_shape_error(p.n, p.k, p.group_size));
  if (p.w_layout != Int4Layout::kBlocks) {
    check_or_abort("the CUDA gemm_w4a16 reads Int4Layout::kBlocks weights (GGUF Q4_0 order); "
                   "this backend has no pack_w4a16, so upload the blocks as quantized");
  }
  STRATA_CHECK(p.m >= 0);
  if (p.m == 0 || p.n == 0) return;
  STRATA_CHECK(p.x != nullptr && p.w != nullptr && p.y != nullptr && p.workspace != nullptr);
  STRATA_CHECK(p.ldx >= p.k && p.ldy >= p.n);
  cudaStream_t stream = context().stream;
  const W4A16Plan plan = plan_gemm_w4a16(p.m, p.n, p.k);
  launch_convert_rows(p.x, p.ldx, p.m, p.k, DType::kBF16, p.workspace, stream);
  if (plan.gemv) {
    launch_w4a16_gemv(p, p.workspace, plan, stream);
    return;
  }
  char* ws = static_cast<char*>(p.workspace);
  const int64_t row_bytes = int4_blocks_bytes(1, p.k, p.group_size);
  for (int64_t j0 = 0; j0 < p.n; j0 += plan.slice_rows) {
    const int64_t rows = p.n - j0 < plan.slice_rows ? p.n - j0 : plan.slice_rows;
    launch_w4a16_dequant_split(static_cast<const char*>(p.w) + j0 * row_bytes, p.group_size,
                               rows, p.k, ws + plan.hi_offset, ws + plan.lo_offset, stream);
    gemm_slice(p, p.workspace, ws + plan.hi_offset, j0, rows, p.accumulate ? 1.0f : 0.0f);
    gemm_slice(p, p.workspace, ws + plan.lo_offset, j0, rows, 1.0f);
  }
  if (p.bias != nullptr) launch_add_bias(p.y, p.ldy, p.m, p.n, p.bias, stream);
}

}  // namespace strata::kernels::cuda
