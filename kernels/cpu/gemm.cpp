#include "kernels/cpu/gemm.h"

#include <cstdlib>
#include <cstring>
#include <memory>

#include "common/check.h"
#include "kernels/cpu/isa.h"

namespace strata::kernels::cpu {
namespace {

// Per-thread scratch that only grows: a serving loop calls gemm with the same few shapes,
// so after warm-up there is no allocation on the hot path.
void* scratch(size_t bytes) {
  struct Deleter {
    void operator()(void* ptr) const { std::free(ptr); }
  };
  thread_local std::unique_ptr<void, Deleter> buffer;
  thread_local size_t capacity = 0;
  if (bytes > capacity) {
    const size_t rounded = (bytes + 4095) / 4096 * 4096;
    buffer.reset(std::aligned_alloc(64, rounded));
    STRATA_CHECK(buffer != nullptr);
    capacity = rounded;
  }
  return buffer.get();
}

}  // namespace

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

void gemm(const GemmParams& p) {
  STRATA_CHECK(p.w_dtype == DType::kF32 || p.w_dtype == DType::kBF16 ||
               p.w_dtype == DType::kF16);
  STRATA_CHECK(p.m >= 0 && p.n >= 0 && p.k >= 0);
  if (p.m == 0 || p.n == 0) return;
  STRATA_CHECK(p.x != nullptr && p.w != nullptr && p.y != nullptr);
  STRATA_CHECK(p.ldx >= p.k && p.ldy >= p.n);
  STRATA_CHECK(p.w_layout == WeightLayout::kRowMajor || p.w_layout == WeightLayout::kTiled);
  const int threads = num_threads();
  switch (cpu_isa()) {
    case CpuIsa::kAvx512:
      gemm_avx512(p, scratch(gemm_workspace_bytes_avx512(p)), threads);
      return;
    case CpuIsa::kAvx2:
      gemm_avx2(p, scratch(gemm_workspace_bytes_avx2(p)), threads);
      return;
    case CpuIsa::kScalar:
      gemm_scalar(p, threads);
      return;
  }
}

}  // namespace strata::kernels::cpu
