#include "kernels/cuda/plan/launch_plan.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/check.h"

namespace strata::kernels::cuda {
namespace {

template <size_t N>
bool contains(const int (&values)[N], int v) {
  return std::find(std::begin(values), std::end(values), v) != std::end(values);
}

template <size_t N>
std::string join(const int (&values)[N]) {
  std::string s;
  for (size_t i = 0; i < N; ++i) s += fmt::format("{}{}", i ? ", " : "", values[i]);
  return s;
}

}  // namespace

std::string attention_config_error(int num_q_heads, int num_kv_heads, int head_dim,
                                   int block_size) {
  using T = AttentionConfigTable;
  if (!contains(T::kHeadDims, head_dim)) {
    return fmt::format("CUDA attention: head_dim must be one of {}. Given: {}",
                       join(T::kHeadDims), head_dim);
  }
  // A power of two up to 32 divides kDecodePartitionTokens, so decode splits start at a
  // block boundary.
  if (block_size <= 0 || block_size > T::kMaxBlockSize || (block_size & (block_size - 1)) != 0) {
    return fmt::format("CUDA attention: block_size must be a power of two <= {} (tested: {}). "
                       "Given: {}", T::kMaxBlockSize, join(T::kBlockSizes), block_size);
  }
  if (num_kv_heads <= 0 || num_q_heads <= 0 || num_q_heads % num_kv_heads != 0) {
    return fmt::format("CUDA attention: num_q_heads must be a positive multiple of num_kv_heads. "
                       "Given: {} and {}", num_q_heads, num_kv_heads);
  }
  if (num_q_heads / num_kv_heads > T::kMaxGroup) {
    return fmt::format("CUDA attention: num_q_heads / num_kv_heads must be <= {}. Given: {}",
                       T::kMaxGroup, num_q_heads / num_kv_heads);
  }
  return {};
}

int decode_splits_for(int context_len) {
  return context_len <= 0 ? 0 : (context_len + kDecodePartitionTokens - 1) / kDecodePartitionTokens;
}

DecodePlan plan_decode(int num_seqs, int num_q_heads, int num_kv_heads, int head_dim,
                       int max_context_len) {
  STRATA_CHECK(num_seqs >= 0 && num_q_heads > 0 && num_kv_heads > 0 && head_dim > 0);
  DecodePlan plan;
  plan.num_splits = num_seqs == 0 ? 0 : decode_splits_for(max_context_len);
  plan.grid_x = num_seqs;
  plan.grid_y = num_kv_heads;
  plan.reduce_threads = head_dim;
  const int64_t rows = int64_t{num_seqs} * num_q_heads * plan.num_splits;
  plan.partial_out_floats = rows * head_dim;
  plan.partial_ml_floats = rows * 2;
  plan.workspace_bytes = align_up(plan.partial_out_floats * 4, 256) +
                         align_up(plan.partial_ml_floats * 4, 256);
  return plan;
}

PrefillPlan plan_prefill(std::span<const AttentionSequence> seqs, int num_q_heads,
                         int num_kv_heads) {
  STRATA_CHECK(num_kv_heads > 0 && num_q_heads % num_kv_heads == 0);
  const int group = num_q_heads / num_kv_heads;
  STRATA_CHECK(group <= kPrefillMaxRows);
  PrefillPlan plan;
  plan.tile_queries = std::max(1, kPrefillMaxRows / group);
  for (size_t s = 0; s < seqs.size(); ++s) {
    const AttentionSequence& seq = seqs[s];
    STRATA_CHECK(seq.num_queries >= 0 && seq.context_len >= seq.num_queries);
    const int first_pos = seq.context_len - seq.num_queries;
    for (int q0 = 0; q0 < seq.num_queries; q0 += plan.tile_queries) {
      const int q1 = std::min(q0 + plan.tile_queries, seq.num_queries);
      plan.items.push_back({.seq = static_cast<int32_t>(s), .q_begin = q0, .q_end = q1,
                            .kv_len = first_pos + q1});
    }
  }
  // Longest first: the grid's last wave is then made of short tiles.
  std::stable_sort(plan.items.begin(), plan.items.end(),
                   [](const PrefillItem& a, const PrefillItem& b) { return a.kv_len > b.kv_len; });
  plan.grid_x = static_cast<int>(plan.items.size());
  plan.grid_y = num_kv_heads;
  return plan;
}

RowPlan plan_rows(int64_t rows, int64_t row_elems, int elems_per_thread, int max_threads) {
  STRATA_CHECK(rows >= 0 && row_elems >= 0 && elems_per_thread > 0 && max_threads >= 32);
  int threads = 32;
  while (threads < max_threads && int64_t{threads} * elems_per_thread < row_elems) threads *= 2;
  return {.blocks = rows, .threads = threads};
}

int64_t plan_flat_blocks(int64_t n, int threads) {
  STRATA_CHECK(n >= 0 && threads > 0);
  return (n + threads - 1) / threads;
}

int64_t gemm_scratch_bytes(DType w_dtype, int64_t m, int64_t k) {
  switch (w_dtype) {
    case DType::kBF16:
    case DType::kF16:
      return align_up(m * k * 2, 256);
    default:
      return 0;
  }
}

}  // namespace strata::kernels::cuda
