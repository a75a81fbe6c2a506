// GEMMs on cuBLAS. CPU twin: kernels/cpu/gemm.cpp.
//
// Row-major y[m, n] = x[m, k] · W[n, k]ᵀ is, read column-major, yᵀ[n, m] = W · xᵀ with W
// seen as a k × n column-major matrix: one "TN" call, op(A) = Wᵀ (lda = k), B = xᵀ
// (ldb = ldx), C = yᵀ (ldc = ldy). No copies or transposes of the weights are needed.
//
//   fp32 weights:       cublasSgemm in plain FP32 (no TF32, see cuda_context.cpp)
//   bf16 / fp16 weights: x rounded to the weights' type into the caller's workspace, then cublasGemmEx
//                       with fp32 output and CUBLAS_COMPUTE_32F (tensor cores)
#include <fmt/format.h>

#include <cstdio>

#include "common/check.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/launchers.h"

namespace strata::kernels::cuda {

void gemm(const GemmParams& p) {
  STRATA_CHECK(p.m >= 0 && p.n >= 0 && p.k >= 0);
  if (p.m == 0 || p.n == 0) return;
  STRATA_CHECK(p.x != nullptr && p.w != nullptr && p.y != nullptr);
  STRATA_CHECK(p.ldx >= p.k && p.ldy >= p.n);
  // cuda_backend() has no pack_weights: weights stay row-major on the GPU.
  STRATA_CHECK(p.w_layout == WeightLayout::kRowMajor);
  CudaContext& ctx = context();
  const int m = static_cast<int>(p.m), n = static_cast<int>(p.n), k = static_cast<int>(p.k);
  const float alpha = 1.0f, beta = p.accumulate ? 1.0f : 0.0f;
  switch (p.w_dtype) {
    case DType::kF32:
      STRATA_CUBLAS_CHECK(cublasSgemm(ctx.cublas, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha,
                                      static_cast<const float*>(p.w), k, p.x,
                                      static_cast<int>(p.ldx), &beta, p.y,
                                      static_cast<int>(p.ldy)));
      break;
    case DType::kBF16:
    case DType::kF16: {
      const cudaDataType type = p.w_dtype == DType::kBF16 ? CUDA_R_16BF : CUDA_R_16F;
      // x rounded to the weights' type, in the caller's workspace.
      STRATA_CHECK(p.workspace != nullptr);
      void* x16 = p.workspace;
      launch_convert_rows(p.x, p.ldx, p.m, p.k, p.w_dtype, x16, ctx.stream);
      STRATA_CUBLAS_CHECK(cublasGemmEx(ctx.cublas, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, p.w,
                                       type, k, x16, type, k, &beta, p.y, CUDA_R_32F,
                                       static_cast<int>(p.ldy), CUBLAS_COMPUTE_32F,
                                       CUBLAS_GEMM_DEFAULT));
      break;
    }
    default:
      STRATA_CHECK(false && "GEMM weight dtype must be fp32, bf16 or fp16");
  }
  if (p.bias != nullptr) launch_add_bias(p.y, p.ldy, p.m, p.n, p.bias, ctx.stream);
}

}  // namespace strata::kernels::cuda
