// GEMMs on cuBLAS / cuBLASLt. CPU twin: kernels/cpu/gemm.cpp.
//
// Row-major y[m, n] = x[m, k] · W[n, k]ᵀ is, read column-major, yᵀ[n, m] = W · xᵀ with W
// seen as a k × n column-major matrix: one "TN" call, op(A) = Wᵀ (lda = k), B = xᵀ
// (ldb = ldx), C = yᵀ (ldc = ldy). No copies or transposes of the weights are needed.
//
//   fp32 weights:       cublasSgemm in plain FP32 (no TF32, see cuda_context.cpp)
//   bf16 / fp16 weights: x rounded to the weights' type into scratch, then cublasGemmEx
//                       with fp32 output and CUBLAS_COMPUTE_32F (tensor cores)
//   int8 (W8A8):        cuBLASLt IMMA with int32 accumulation into scratch, then one
//                       dequantization kernel (scales, bias, accumulate)
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
      void* x16 = ctx.scratch.get(gemm_scratch_bytes(p.w_dtype, p.m, p.k), ctx.stream);
      launch_convert_rows(p.x, p.ldx, p.m, p.k, p.w_dtype, x16, ctx.stream);
      STRATA_CUBLAS_CHECK(cublasGemmEx(ctx.cublas, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, p.w,
                                       type, k, x16, type, k, &beta, p.y, CUDA_R_32F,
                                       static_cast<int>(p.ldy), CUBLAS_COMPUTE_32F,
                                       CUBLAS_GEMM_DEFAULT));
      break;
    }
    default:
      STRATA_CHECK(false && "GEMM weight dtype must be fp32, bf16 or fp16 (int8: gemm_int8)");
  }
  if (p.bias != nullptr) launch_add_bias(p.y, p.ldy, p.m, p.n, p.bias, ctx.stream);
}

namespace {

// cuBLASLt objects of one call, destroyed in reverse order.
struct LtCall {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~LtCall() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

}  // namespace

void gemm_int8(const GemmInt8Params& p) {
  const std::string error = gemm_int8_shape_error(p.m, p.n, p.k, p.ldx);
  if (!error.empty()) {
    std::fprintf(stderr, "strata: %s\n", error.c_str());
    STRATA_CHECK(error.empty());
  }
  if (p.m == 0 || p.n == 0) return;
  STRATA_CHECK(p.x && p.w && p.x_scale && p.w_scale && p.y && p.ldy >= p.n);
  CudaContext& ctx = context();
  auto* acc = static_cast<int32_t*>(ctx.scratch.get(gemm_int8_scratch_bytes(p.m, p.n), ctx.stream));
  LtCall call;
  STRATA_CUBLAS_CHECK(cublasLtMatmulDescCreate(&call.desc, CUBLAS_COMPUTE_32I, CUDA_R_32I));
  const cublasOperation_t op_t = CUBLAS_OP_T;
  STRATA_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(call.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_t,
                                                     sizeof op_t));
  // A = W as k × n column-major (transposed by the op), B = xᵀ (k × m), C = accᵀ (n × m).
  STRATA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&call.a, CUDA_R_8I, static_cast<uint64_t>(p.k),
                                                 static_cast<uint64_t>(p.n), p.k));
  STRATA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&call.b, CUDA_R_8I, static_cast<uint64_t>(p.k),
                                                 static_cast<uint64_t>(p.m), p.ldx));
  STRATA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&call.c, CUDA_R_32I, static_cast<uint64_t>(p.n),
                                                 static_cast<uint64_t>(p.m), p.n));
  STRATA_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&call.pref));
  const uint64_t ws_bytes = static_cast<uint64_t>(kCublasWorkspaceBytes);
  STRATA_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      call.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes, sizeof ws_bytes));
  cublasLtMatmulHeuristicResult_t heuristic{};
  int found = 0;
  STRATA_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(ctx.cublas_lt, call.desc, call.a, call.b,
                                                     call.c, call.c, call.pref, 1, &heuristic,
                                                     &found));
  if (found == 0) {
    cuda_fail("cublasLtMatmulAlgoGetHeuristic",
              fmt::format("no int8 algorithm for m={} n={} k={}", p.m, p.n, p.k).c_str(), __FILE__,
              __LINE__);
  }
  const int32_t alpha = 1, beta = 0;
  STRATA_CUBLAS_CHECK(cublasLtMatmul(ctx.cublas_lt, call.desc, &alpha, p.w, call.a, p.x, call.b,
                                     &beta, acc, call.c, acc, call.c, &heuristic.algo,
                                     ctx.cublas_workspace, kCublasWorkspaceBytes, ctx.stream));
  launch_dequantize_int32(acc, p, ctx.stream);
}

void quantize_rows_int8(const QuantizeInt8Params& p) {
  STRATA_CHECK(p.m >= 0 && p.k > 0);
  launch_quantize_rows_int8(p, context().stream);
}

}  // namespace strata::kernels::cuda
