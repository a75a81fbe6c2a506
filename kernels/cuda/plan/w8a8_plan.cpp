#include "kernels/cuda/plan/w8a8_plan.h"

#include <fmt/format.h>

#include "common/check.h"

namespace strata::kernels::cuda {

std::string w8a8_cublaslt_error(const GemmW8A8Params& p) {
  if (p.k % 4 != 0 || p.n % 4 != 0 || p.ldx % 4 != 0) {
    return fmt::format("CUDA gemm_w8a8 per channel (cuBLASLt int8): k, n and ldx must be "
                       "multiples of 4. Given: k={} n={} ldx={}", p.k, p.n, p.ldx);
  }
  const auto x = reinterpret_cast<uintptr_t>(p.x), w = reinterpret_cast<uintptr_t>(p.w);
  if (x % 4 != 0 || w % 4 != 0) {
    return fmt::format("CUDA gemm_w8a8 per channel (cuBLASLt int8): x and w must be 4-byte "
                       "aligned. Given: x % 4 = {}, w % 4 = {}", x % 4, w % 4);
  }
  return {};
}

int64_t w8a8_workspace_bytes(int64_t m, int64_t n, int64_t k, int64_t group_size) {
  STRATA_CHECK(m >= 0 && n >= 0 && k >= 0);
  if (group_size != 0) return 256;
  return w8a8_lt_workspace_offset(m, n) + kW8A8LtWorkspaceBytes;
}

int64_t plan_w8a8_direct_blocks(int64_t m, int64_t n) {
  STRATA_CHECK(m >= 0 && n >= 0);
  return (m * n + kW8A8WarpsPerBlock - 1) / kW8A8WarpsPerBlock;
}

}  // namespace strata::kernels::cuda
