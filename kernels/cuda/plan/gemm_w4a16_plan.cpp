#include "kernels/cuda/plan/gemm_w4a16_plan.h"

#include "kernels/cuda/plan/launch_plan.h"

namespace strata::kernels::cuda {

W4A16Plan plan_gemm_w4a16(int64_t m, int64_t n, int64_t k) {
  W4A16Plan plan;
  const int64_t x16_bytes = align_up(m * k * 2, 256);
  if (m <= kW4GemvMaxRows) {
    plan.gemv = true;
    plan.blocks = (n + kW4GemvRowsPerBlock - 1) / kW4GemvRowsPerBlock;
    plan.threads = kW4GemvWarps * 32;
    plan.workspace_bytes = x16_bytes;
    return plan;
  }
  // The slice size is fixed, not n's, so the workspace does not depend on n.
  plan.slice_rows = n < kW4DequantRows ? n : kW4DequantRows;
  const int64_t slice_bytes = align_up(kW4DequantRows * k * 2, 256);
  plan.hi_offset = x16_bytes;
  plan.lo_offset = x16_bytes + slice_bytes;
  plan.workspace_bytes = x16_bytes + 2 * slice_bytes;
  return plan;
}

int64_t gemm_w4a16_workspace_bytes(int64_t m, int64_t k) {
  return plan_gemm_w4a16(m, kW4DequantRows, k).workspace_bytes;
}

}  // namespace strata::kernels::cuda
