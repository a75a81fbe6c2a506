// The CUDA W8A8 GEMM (plan: plan/w8a8_plan.h). CPU twin: kernels/cpu/gemm_w8a8.cpp.
//
// Per channel, row-major y[m, n] = x[m, k] · W[n, k]ᵀ read column-major is the "TN" problem
// cuBLASLt's int8 kernels want: A = W as k × n (lda = k, transposed), B = x as k × m
// (ldb = ldx), C = the int32 products as n × m (ldc = n), i.e. row-major [m, n] in the
// workspace. The epilogue kernel then applies the scales, bias and residual.
#include <cublasLt.h>
#include <fmt/format.h>

#include <cstdio>
#include <string>
#include <utility>

#include "common/check.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/launchers.h"
#include "kernels/cuda/plan/w8a8_plan.h"
#include "kernels/w8a8.h"

namespace strata::kernels::cuda {
namespace {

[[noreturn]] void refuse(const std::string& message) {
  std::fprintf(stderr, "strata: %s\n", message.c_str());
  std::abort();
}

// Largest power of two up to 256 dividing the address and the leading dimension in bytes:
// cuBLASLt assumes 256 unless told (its MIN_ALIGNMENT preferences).
uint32_t alignment(const void* ptr, int64_t ld_bytes) {
  const auto bits = reinterpret_cast<uintptr_t>(ptr) | static_cast<uintptr_t>(ld_bytes) | 256u;
  return static_cast<uint32_t>(bits & (~bits + 1));
}

// The descriptors of one call, destroyed with it.
struct LtCall {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~LtCall() {
    if (pref != nullptr) cublasLtMatmulPreferenceDestroy(pref);
    if (c != nullptr) cublasLtMatrixLayoutDestroy(c);
    if (b != nullptr) cublasLtMatrixLayoutDestroy(b);
    if (a != nullptr) cublasLtMatrixLayoutDestroy(a);
    if (op != nullptr) cublasLtMatmulDescDestroy(op);
  }
};

void describe(LtCall& call, const GemmW8A8Params& p, int32_t* acc) {
  STRATA_CUBLAS_CHECK(cublasLtMatmulDescCreate(&call.op, CUBLAS_COMPUTE_32I, CUDA_R_32I));
  const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
  STRATA_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(call.op, CUBLASLT_MATMUL_DESC_TRANSA,
                                                     &trans_a, sizeof trans_a));
  STRATA_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(call.op, CUBLASLT_MATMUL_DESC_TRANSB,
                                                     &trans_b, sizeof trans_b));
  const auto m = static_cast<uint64_t>(p.m), n = static_cast<uint64_t>(p.n),
             k = static_cast<uint64_t>(p.k);
  STRATA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&call.a, CUDA_R_8I, k, n, p.k));
  STRATA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&call.b, CUDA_R_8I, k, m, p.ldx));
  STRATA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&call.c, CUDA_R_32I, n, m, p.n));
  STRATA_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&call.pref));
  const uint64_t ws = kW8A8LtWorkspaceBytes;
  STRATA_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      call.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
  const uint32_t align_a = alignment(p.w, p.k), align_b = alignment(p.x, p.ldx),
                 align_c = alignment(acc, p.n * 4);
  using Attr = cublasLtMatmulPreferenceAttributes_t;
  for (const auto& [attr, value] :
       {std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_a},
        std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_b},
        std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_c},
        std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_c}}) {
    STRATA_CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(call.pref, Attr(attr), &value, sizeof value));
  }
}

// acc [m, n] = x · Wᵀ in int32 on the stream.
void int8_products(const GemmW8A8Params& p, int32_t* acc, void* lt_workspace) {
  CudaContext& ctx = context();
  // A cuBLAS handle holds a cuBLASLt one and may be used as one (cuBLAS docs, cublasLtHandle_t).
  auto lt = reinterpret_cast<cublasLtHandle_t>(ctx.cublas);
  LtCall call;
  describe(call, p, acc);
  cublasLtMatmulHeuristicResult_t heuristic{};
  int found = 0;
  STRATA_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(lt, call.op, call.a, call.b, call.c,
                                                     call.c, call.pref, 1, &heuristic, &found));
  if (found == 0) {
    refuse(fmt::format("CUDA gemm_w8a8: cuBLASLt has no int8 kernel for m={} n={} k={} "
                       "ldx={} on this GPU", p.m, p.n, p.k, p.ldx));
  }
  const int32_t one = 1, zero = 0;
  STRATA_CUBLAS_CHECK(cublasLtMatmul(lt, call.op, &one, p.w, call.a, p.x, call.b, &zero, acc,
                                     call.c, acc, call.c, &heuristic.algo, lt_workspace,
                                     static_cast<size_t>(kW8A8LtWorkspaceBytes), ctx.stream));
}

}  // namespace

int64_t gemm_w8a8_workspace_bytes(int64_t m, int64_t n, int64_t k, int64_t group_size) {
  check_w8a8_shape("CUDA gemm_w8a8_workspace_bytes", k, group_size);
  return w8a8_workspace_bytes(m, n, k, group_size);
}

void gemm_w8a8(const GemmW8A8Params& p) {
  check_gemm_w8a8(p, WeightLayout::kRowMajor, "CUDA");
  if (p.m == 0 || p.n == 0) return;
  cudaStream_t stream = context().stream;
  if (p.group_size != 0) {
    launch_w8a8_direct(p, stream);
    return;
  }
  if (const std::string error = w8a8_cublaslt_error(p); !error.empty()) refuse(error);
  auto* acc = static_cast<int32_t*>(p.workspace);
  int8_products(p, acc, static_cast<char*>(p.workspace) + w8a8_lt_workspace_offset(p.m, p.n));
  launch_w8a8_epilogue(p, acc, stream);
}

}  // namespace strata::kernels::cuda
