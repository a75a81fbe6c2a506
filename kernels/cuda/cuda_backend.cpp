// The CUDA backend table and the host-side entry points: argument checks, planning
// (plan/launch_plan.h), metadata upload, then one launcher per op.
#include "kernels/cuda/cuda_backend.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <span>
#include <vector>

#include "common/check.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/launchers.h"

namespace strata::kernels::cuda {
namespace {

void check_attention(const PagedAttentionParams& p) {
  const std::string error =
      attention_config_error(p.num_q_heads, p.num_kv_heads, p.head_dim, p.block_size);
  if (!error.empty()) {
    std::fprintf(stderr, "strata: %s\n", error.c_str());
    STRATA_CHECK(error.empty());
  }
}

// Host sequences followed by host work items, uploaded as one copy.
template <class Item>
std::pair<const AttentionSequence*, const Item*> upload(std::span<const AttentionSequence> seqs,
                                                        std::span<const Item> items) {
  thread_local std::vector<unsigned char> staging;
  const int64_t seq_bytes = align_up(static_cast<int64_t>(seqs.size_bytes()), 16);
  staging.assign(static_cast<size_t>(seq_bytes + static_cast<int64_t>(items.size_bytes())), 0);
  if (!seqs.empty()) std::memcpy(staging.data(), seqs.data(), seqs.size_bytes());
  if (!items.empty()) std::memcpy(staging.data() + seq_bytes, items.data(), items.size_bytes());
  auto* base = static_cast<unsigned char*>(
      upload_metadata(staging.data(), static_cast<int64_t>(staging.size())));
  return {reinterpret_cast<const AttentionSequence*>(base),
          reinterpret_cast<const Item*>(base + seq_bytes)};
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

void paged_attention(const PagedAttentionParams& p) {
  if (p.num_seqs == 0) return;
  check_attention(p);
  const std::span<const AttentionSequence> seqs(p.seqs, static_cast<size_t>(p.num_seqs));
  const PrefillPlan plan = plan_prefill(seqs, p.num_q_heads, p.num_kv_heads);
  if (plan.items.empty()) return;
  const auto [device_seqs, device_items] =
      upload(seqs, std::span<const PrefillItem>(plan.items));
  PagedAttentionParams dp = p;
  dp.seqs = device_seqs;
  launch_prefill_attention(dp, plan, device_items, context().stream);
}

void decode_attention(const PagedAttentionParams& p) {
  if (p.num_seqs == 0) return;
  check_attention(p);
  int max_context = 0;
  for (int s = 0; s < p.num_seqs; ++s) {
    STRATA_CHECK(p.seqs[s].num_queries == 1 && p.seqs[s].context_len >= 1);
    max_context = std::max(max_context, p.seqs[s].context_len);
  }
  const std::span<const AttentionSequence> seqs(p.seqs, static_cast<size_t>(p.num_seqs));
  PagedAttentionParams dp = p;
  dp.seqs = upload(seqs, std::span<const int>()).first;
  decode_attention_device(dp, max_context);
}

}  // namespace

void decode_attention_device(const PagedAttentionParams& p, int max_context_len) {
  if (p.num_seqs == 0) return;
  check_attention(p);
  const DecodePlan plan =
      plan_decode(p.num_seqs, p.num_q_heads, p.num_kv_heads, p.head_dim, max_context_len);
  CudaContext& ctx = context();
  void* workspace = ctx.scratch.get(plan.workspace_bytes, ctx.stream);
  launch_decode_attention(p, plan, workspace, ctx.stream);
}

}  // namespace strata::kernels::cuda

namespace strata::kernels {

const KernelBackend& cuda_backend() {
  static const KernelBackend backend{
      .name = "cuda",
      .gemm = cuda::gemm,
      .rmsnorm = cuda::rmsnorm,
      .rope = cuda::rope,
      .silu_mul = cuda::silu_mul,
      .kv_cache_write = cuda::kv_cache_write,
      .paged_attention = cuda::paged_attention,
      .decode_attention = cuda::decode_attention,
      .embedding = cuda::embedding,
      .add = cuda::add,
      .gather_rows = cuda::gather_rows,
      .copy = cuda::copy,
      .synchronize = cuda::synchronize,
      .decode_attention_device = cuda::decode_attention_device,
  };
  return backend;
}

}  // namespace strata::kernels
