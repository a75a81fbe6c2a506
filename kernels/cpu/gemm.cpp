#include "kernels/cpu/gemm.h"

#include <cstdint>
#include <cstring>

#include "common/check.h"
#include "kernels/cpu/isa.h"

namespace strata::kernels::cpu {
WeightLayout pack_weights(const PackWeightsParams& p) {
  STRATA_CHECK(p.dtype == DType::kF32 || p.dtype == DType::kBF16 || p.dtype == DType::kF16);
  STRATA_CHECK(p.n >= 0 && p.k >= 0 && p.src != nullptr && p.dst != nullptr);
  const size_t el = dtype_size(p.dtype);
  const int64_t chunk = kWeightTileChunk;
  const auto* src = static_cast<const char*>(p.src);
  auto* dst = static_cast<char*>(p.dst);
  // One chunk of one row at a time: len elements, contiguous on both sides.
  for (int64_t j = 0; j < p.n; ++j) {
    for (int64_t kk = 0; kk < p.k; kk += chunk) {
      const int64_t len = p.k - kk < chunk ? p.k - kk : chunk;
      std::memcpy(dst + tiled_offset(j, kk, p.n, p.k) * el, src + (j * p.k + kk) * el,
                  static_cast<size_t>(len) * el);
    }
  }
  return WeightLayout::kTiled;
}

int64_t gemm_workspace_bytes(DType w_dtype, int64_t m, int64_t k) {
  switch (cpu_isa()) {
    case CpuIsa::kAvx512: return gemm_workspace_bytes_avx512(w_dtype, m, k);
    case CpuIsa::kAvx2: return gemm_workspace_bytes_avx2(m, k);
    case CpuIsa::kScalar: return 0;
  }
  return 0;
}

void gemm(const GemmParams& p) {
  STRATA_CHECK(p.w_dtype == DType::kF32 || p.w_dtype == DType::kBF16 ||
               p.w_dtype == DType::kF16);
  STRATA_CHECK(p.m >= 0 && p.n >= 0 && p.k >= 0);
  if (p.m == 0 || p.n == 0) return;
  STRATA_CHECK(p.x != nullptr && p.w != nullptr && p.y != nullptr);
  STRATA_CHECK(p.ldx >= p.k && p.ldy >= p.n);
  STRATA_CHECK(p.w_layout == WeightLayout::kRowMajor || p.w_layout == WeightLayout::kTiled);
  STRATA_CHECK(p.workspace != nullptr || gemm_workspace_bytes(p.w_dtype, p.m, p.k) == 0);
  STRATA_CHECK(reinterpret_cast<uintptr_t>(p.workspace) % 64 == 0);
  const int threads = num_threads();
  switch (cpu_isa()) {
    case CpuIsa::kAvx512:
      gemm_avx512(p, p.workspace, threads);
      return;
    case CpuIsa::kAvx2:
      gemm_avx2(p, p.workspace, threads);
      return;
    case CpuIsa::kScalar:
      gemm_scalar(p, threads);
      return;
  }
}

}  // namespace strata::kernels::cpu
