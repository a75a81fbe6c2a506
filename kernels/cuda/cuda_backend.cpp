// The CUDA backend table and the host-side entry points: argument checks, planning
// (plan/launch_plan.h), then one launcher per op.
#include "kernels/cuda/cuda_backend.h"

#include <algorithm>
#include <cstdio>
#include <span>
#include <utility>

#include "common/check.h"
#include "kernels/attention_plan.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/launchers.h"

namespace strata::kernels::cuda {
namespace {

void check_attention(int num_q_heads, int num_kv_heads, int head_dim, int block_size) {
  const std::string error =
      attention_config_error(num_q_heads, num_kv_heads, head_dim, block_size);
  if (!error.empty()) {
    std::fprintf(stderr, "strata: %s\n", error.c_str());
    STRATA_CHECK(error.empty());
  }
}

void rmsnorm(const RmsNormParams& p) {
  STRATA_CHECK(p.m >= 0 && p.n > 0);
  launch_rmsnorm(p, context().stream);
}
void rope(const RopeParams& p) { launch_rope(p, context().stream); }
void silu_mul(const SiluMulParams& p) { launch_silu_mul(p, context().stream); }
void kv_cache_write(const KvCacheWriteParams& p) { launch_kv_cache_write(p, context().stream); }
void embedding(const EmbeddingParams& p) {
  // This backend never packs weights (no pack_weights hook), so tables are row-major.
  STRATA_CHECK(p.table_layout == WeightLayout::kRowMajor);
  launch_embedding(p, context().stream);
}

void rmsnorm_quant(const RmsNormQuantParams& p) {
  STRATA_CHECK(p.m >= 0 && p.n > 0);
  launch_rmsnorm_quant(p, context().stream);
}
void silu_mul_quant(const SiluMulQuantParams& p) {
  STRATA_CHECK(p.t >= 0 && p.f > 0);
  launch_silu_mul_quant(p, context().stream);
}

void add(const AddParams& p) {
  STRATA_CHECK(p.m >= 0 && p.n >= 0);
  launch_add(p, context().stream);
}
void gather_rows(const GatherRowsParams& p) {
  STRATA_CHECK(p.m >= 0 && p.n >= 0);
  launch_gather_rows(p, context().stream);
}

void copy(const CopyParams& p) {
  if (p.rows <= 0 || p.row_bytes <= 0) return;
  const cudaMemcpyKind kind = p.kind == CopyKind::kHostToDevice   ? cudaMemcpyHostToDevice
                              : p.kind == CopyKind::kDeviceToHost ? cudaMemcpyDeviceToHost
                                                                  : cudaMemcpyDeviceToDevice;
  const auto width = static_cast<size_t>(p.row_bytes);
  cudaStream_t stream = context().stream;
  if (p.rows == 1) {
    STRATA_CUDA_CHECK(cudaMemcpyAsync(p.dst, p.src, width, kind, stream));
    return;
  }
  STRATA_CHECK(p.dst_pitch >= p.row_bytes && p.src_pitch >= p.row_bytes);
  STRATA_CUDA_CHECK(cudaMemcpy2DAsync(p.dst, static_cast<size_t>(p.dst_pitch), p.src,
                                      static_cast<size_t>(p.src_pitch), width,
                                      static_cast<size_t>(p.rows), kind, stream));
}

// Prefill tiles come from plan_prefill (longest first); decode splits are fixed
// kDecodePartitionTokens-long partitions, so a sequence's split points depend only on its
// own length. The one upload of the plan's metadata is the caller's.
void plan_attention(const AttentionPlanParams& p, AttentionPlan& plan) {
  start_attention_plan(p, plan);
  if (p.num_decode_seqs + p.num_prefill_seqs > 0) {
    check_attention(p.num_q_heads, p.num_kv_heads, p.head_dim, p.block_size);
  }
  const std::span<const AttentionSequence> seqs(p.prefill_seqs,
                                                static_cast<size_t>(p.num_prefill_seqs));
  PrefillPlan prefill = plan_prefill(seqs, p.num_q_heads, p.num_kv_heads);
  plan.prefill_items = std::move(prefill.items);
  const DecodePlan decode = plan_decode(p.num_decode_seqs, p.num_q_heads, p.num_kv_heads,
                                        p.head_dim, plan.max_context_len);
  plan.decode_splits = decode.num_splits;
  plan.workspace_bytes = decode.workspace_bytes;
  write_attention_metadata(p, plan);
}

void paged_attention(const PagedAttentionParams& p) {
  check_attention_run(p);
  if (p.plan->prefill_items.empty()) return;
  STRATA_CHECK(p.plan->items != nullptr && p.plan->prefill_seqs != nullptr);  // bound
  launch_prefill_attention(p, context().stream);
}

// The launch shape is plan_decode's for the plan's counts: grid arithmetic, checked
// against the split count the plan fixed.
void decode_attention(const PagedAttentionParams& p) {
  check_attention_run(p);
  const AttentionPlan& plan = *p.plan;
  if (plan.num_decode_seqs == 0) return;
  STRATA_CHECK(plan.decode_seqs != nullptr);  // bound
  const DecodePlan shape = plan_decode(plan.num_decode_seqs, p.num_q_heads, p.num_kv_heads,
                                       p.head_dim, plan.max_context_len);
  STRATA_CHECK(shape.num_splits == plan.decode_splits &&
               shape.workspace_bytes <= plan.workspace_bytes);
  STRATA_CHECK(p.workspace != nullptr);
  launch_decode_attention(p, shape, context().stream);
}

}  // namespace

}  // namespace strata::kernels::cuda

namespace strata::kernels {

const KernelBackend& cuda_backend() {
  static const KernelBackend backend{
      .name = "cuda",
      .gemm = cuda::gemm,
      .gemm_workspace_bytes = cuda::gemm_scratch_bytes,
      .rmsnorm = cuda::rmsnorm,
      .rope = cuda::rope,
      .silu_mul = cuda::silu_mul,
      .kv_cache_write = cuda::kv_cache_write,
      .plan_attention = cuda::plan_attention,
      .paged_attention = cuda::paged_attention,
      .decode_attention = cuda::decode_attention,
      .embedding = cuda::embedding,
      .add = cuda::add,
      .gather_rows = cuda::gather_rows,
      .copy = cuda::copy,
      .synchronize = cuda::synchronize,
      .rmsnorm_quant = cuda::rmsnorm_quant,
      .silu_mul_quant = cuda::silu_mul_quant,
      .gemm_w8a8 = cuda::gemm_w8a8,
      .gemm_w8a8_workspace_bytes = cuda::gemm_w8a8_workspace_bytes,
      .gemm_w4a16 = cuda::gemm_w4a16,
      .gemm_w4a16_workspace_bytes = cuda::gemm_w4a16_workspace_bytes,
  };
  return backend;
}

}  // namespace strata::kernels
