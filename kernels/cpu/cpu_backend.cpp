// The CPU backend table. Each entry dispatches on cpu_isa() at call time (one relaxed
// atomic load), so tests and benchmarks can switch paths with force_cpu_isa().
#include "kernels/cpu/activation_quant.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/decode_attention.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_w8a8.h"
#include "kernels/cpu/gemm_w4a16.h"
#include "kernels/cpu/kv_cache_write.h"
#include "kernels/ops.h"

namespace strata::kernels {

const KernelBackend& cpu_backend() {
  static const KernelBackend backend{
      .name = "cpu",
      .gemm = cpu::gemm,
      .gemm_workspace_bytes = cpu::gemm_workspace_bytes,
      .rmsnorm = cpu::rmsnorm,
      .rope = cpu::rope,
      .silu_mul = cpu::silu_mul,
      .kv_cache_write = cpu::kv_cache_write,
      .plan_attention = cpu::plan_attention,
      .paged_attention = cpu::paged_attention,
      .decode_attention = cpu::decode_attention,
      .embedding = cpu::embedding,
      .add = cpu::add,
      .gather_rows = cpu::gather_rows,
      .copy = cpu::copy,
      .synchronize = [] {},
      .pack_weights = cpu::pack_weights,
      .rmsnorm_quant = cpu::rmsnorm_quant,
      .silu_mul_quant = cpu::silu_mul_quant,
      .gemm_w8a8 = cpu::gemm_w8a8,
      .gemm_w8a8_workspace_bytes = cpu::gemm_w8a8_workspace_bytes,
      .w8a8_packed_bytes = cpu::w8a8_packed_bytes,
      .pack_w8a8 = cpu::pack_w8a8,
      .gemm_w4a16 = cpu::gemm_w4a16,
      .gemm_w4a16_workspace_bytes = cpu::gemm_w4a16_workspace_bytes,
      .pack_w4a16 = cpu::pack_w4a16,
  };
  return backend;
}

}  // namespace strata::kernels
