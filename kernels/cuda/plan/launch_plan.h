// Host-side planning for the CUDA kernels: grid sizes, split counts and workspace sizes,
// in plain C++ (no CUDA headers) so they compile in every build and are unit-tested on
// the CPU (tests/gpu/cuda_plan_test.cpp). The launchers in kernels/cuda/ call these and
// nothing else decides a launch shape, so a test of the plan is a test of the launch.
//
// The supported attention configurations are one small table (kAttentionConfigs) that the
// GPU tests iterate; anything outside it is rejected with a clear message, never silently
// run by a slow fallback.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kernels/ops.h"

namespace strata::kernels::cuda {

// ---- attention -----------------------------------------------------------------------

// What the attention kernels are compiled for. Head dims are template parameters (one
// instantiation each); block sizes and GQA group sizes are runtime values within limits.
struct AttentionConfigTable {
  static constexpr int kHeadDims[] = {32, 64, 128};
  static constexpr int kBlockSizes[] = {16, 32};
  static constexpr int kMaxBlockSize = 32;  // one lane per key of a KV block
  static constexpr int kMaxGroup = 16;      // query heads per KV head (rows in shared memory)
};

// Warps per attention thread block; each warp owns rows warp, warp + kAttentionWarps, ...
inline constexpr int kAttentionWarps = 4;
inline constexpr int kAttentionThreads = kAttentionWarps * 32;
// Rows (query, query-head pairs of one GQA group) one prefill thread block processes.
inline constexpr int kPrefillMaxRows = 16;
// KV positions one decode split covers. Fixed (not derived from the batch) so that a
// sequence's split points, and so its arithmetic, depend only on its own context length.
inline constexpr int kDecodePartitionTokens = 512;

// Empty when the configuration is supported; otherwise a message naming the field, the
// supported values and the value given.
std::string attention_config_error(int num_q_heads, int num_kv_heads, int head_dim,
                                   int block_size);

// Flash-decoding: thread block (seq, kv_head, split) reads KV positions
// [split · partition, (split + 1) · partition) of its sequence for all query heads of the
// KV head's group; a reduce kernel (grid num_seqs × num_q_heads, head_dim threads) merges
// the partial softmaxes in split order.
struct DecodePlan {
  int num_splits = 0;        // grid.z: ceil(max_context_len / partition); 0 when no work
  int partition_tokens = kDecodePartitionTokens;
  int grid_x = 0, grid_y = 0;  // num_seqs, num_kv_heads
  int threads = kAttentionThreads;
  int reduce_threads = 0;      // head_dim
  int64_t partial_out_floats = 0;  // [num_seqs, num_q_heads, num_splits, head_dim]
  int64_t partial_ml_floats = 0;   // [num_seqs, num_q_heads, num_splits, 2] (max, sum)
  int64_t workspace_bytes = 0;     // both, each rounded up to 256 bytes
};
DecodePlan plan_decode(int num_seqs, int num_q_heads, int num_kv_heads, int head_dim,
                       int max_context_len);
// Splits a sequence of this length uses (the others of its grid column exit at once).
int decode_splits_for(int context_len);

// FlashAttention-2 style prefill: thread block (item, kv_head) holds a tile of queries of
// one sequence × the query heads of one GQA group (≤ kPrefillMaxRows rows) in shared
// memory and streams the sequence's KV blocks up to the tile's last causal position,
// keeping a running max and sum per row (online softmax).
using PrefillItem = AttentionWorkItem;
struct PrefillPlan {
  std::vector<PrefillItem> items;  // longest kv_len first (the tail of the grid is short)
  int tile_queries = 0;            // max(1, kPrefillMaxRows / group)
  int grid_x = 0, grid_y = 0;      // items.size(), num_kv_heads
  int threads = kAttentionThreads;
};
// seqs: host array (see PagedAttentionParams); sequences with no queries get no items.
PrefillPlan plan_prefill(std::span<const AttentionSequence> seqs, int num_q_heads,
                         int num_kv_heads);

// ---- row-wise ops (rmsnorm, silu_mul, rope, embedding, sampling) ---------------------

// One thread block per row; threads a power of two in [32, max_threads] covering the row
// with ~elems_per_thread elements each.
struct RowPlan {
  int64_t blocks = 0;
  int threads = 0;
};
RowPlan plan_rows(int64_t rows, int64_t row_elems, int elems_per_thread = 4,
                  int max_threads = 1024);

// Flat element-wise launch: ceil(n / threads) blocks (0 when n == 0).
int64_t plan_flat_blocks(int64_t n, int threads);

// ---- GEMM ----------------------------------------------------------------------------

// cuBLAS / cuBLASLt workspace: 32 MiB (what NVIDIA recommends for Hopper; ample on Ampere).
inline constexpr int64_t kCublasWorkspaceBytes = int64_t{32} << 20;
// Scratch a GEMM call needs besides cuBLAS's: the activations converted to the weights'
// 16-bit type ([m, k]) for bf16/fp16 weights; nothing for fp32.
int64_t gemm_scratch_bytes(DType w_dtype, int64_t m, int64_t k);

// Rounds up to a multiple of `align` bytes.
constexpr int64_t align_up(int64_t bytes, int64_t align) {
  return (bytes + align - 1) / align * align;
}

}  // namespace strata::kernels::cuda
