// Paged attention on the GPU: FlashAttention-2 style prefill and flash-decoding decode.
// CPU twins: kernels/cpu/attention.cpp and kernels/cpu/decode_attention.cpp.
//
// Both kernels share one inner loop (attend_block): a thread block holds up to
// kPrefillMaxRows query rows of one GQA group in shared memory, streams KV blocks of one
// KV head through shared memory (so every query head of the group shares each K/V load),
// and keeps per row a running max m, a running sum l and an unnormalized accumulator acc
// (online softmax). Warp w owns rows w, w + 4, ...; within a warp, lane t scores key t of
// the block (block_size <= 32) and lane i accumulates output dims i, i + 32, ....
//
//   prefill: block (item, kv_head), rows = the item's queries × the group's heads, keys
//            0 .. the item's last causal position; writes acc / l.
//   decode:  block (seq, kv_head, split), rows = the group's heads (one query), keys of
//            one kDecodePartitionTokens-long partition; writes (acc, m, l) to the
//            workspace; decode_reduce_kernel merges the partitions in split order.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cfloat>

#include "common/check.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/launchers.h"
#include "kernels/kv_cache_format.h"

namespace strata::kernels::cuda {
namespace {

constexpr int kRowsPerWarp = kPrefillMaxRows / kAttentionWarps;
constexpr int kMaxBlock = AttentionConfigTable::kMaxBlockSize;
static_assert(kMaxBlock == 32, "one lane per key of a KV block");
static_assert(AttentionConfigTable::kMaxGroup <= kPrefillMaxRows, "a group fits one block");

template <int HD>
struct Smem {
  float k[kMaxBlock][HD + 1];  // +1: lane t reads row t, conflict-free
  float v[kMaxBlock][HD];
  float q[kPrefillMaxRows][HD];
};

template <int HD>
struct RowState {
  float acc[kRowsPerWarp][HD / 32];
  float m[kRowsPerWarp];
  float l[kRowsPerWarp];
  int limit[kRowsPerWarp];  // the row attends to positions < limit
};

template <int HD>
__device__ void init_rows(RowState<HD>& st) {
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    st.m[r] = -FLT_MAX;
    st.l[r] = 0.0f;
    st.limit[r] = 0;
#pragma unroll
    for (int i = 0; i < HD / 32; ++i) st.acc[r][i] = 0.0f;
  }
}

// Element idx (row idx / HD, channel idx % HD) of a KV tile, as fp32: the cache format of
// kernels/kv_cache_format.h, converted exactly as the CPU kernels convert it.
template <int HD>
__device__ __forceinline__ float kv_element(const char* tile, DType dtype, int block_size,
                                            int idx) {
  switch (dtype) {
    case DType::kBF16:
      return __bfloat162float(reinterpret_cast<const __nv_bfloat16*>(tile)[idx]);
    case DType::kF16:
      return __half2float(reinterpret_cast<const __half*>(tile)[idx]);
    case DType::kI8: {
      const __half* scales = reinterpret_cast<const __half*>(
          tile + kv_tile_value_bytes(DType::kI8, block_size, HD));
      const int row = idx / HD, group = (idx % HD) / kKvScaleGroup;
      return __fmul_rn(static_cast<float>(reinterpret_cast<const int8_t*>(tile)[idx]),
                       __half2float(scales[row * kv_scale_groups(HD) + group]));
    }
    default:
      return reinterpret_cast<const float*>(tile)[idx];
  }
}

// Loads KV positions [start, start + n) (one block of the table) of one KV head into
// shared memory as fp32. Called by the whole thread block.
template <int HD>
__device__ void load_block(Smem<HD>& sm, const PagedAttentionParams& p, int32_t physical_block,
                           int kv_head, int n) {
  const int64_t tile_bytes = kv_tile_bytes(p.cache_dtype, p.block_size, HD);
  const int64_t at = (static_cast<int64_t>(physical_block) * p.num_kv_heads + kv_head) * tile_bytes;
  const char* k_tile = static_cast<const char*>(p.k_cache) + at;
  const char* v_tile = static_cast<const char*>(p.v_cache) + at;
  __syncthreads();  // the previous block is no longer read
  for (int idx = threadIdx.x; idx < n * HD; idx += blockDim.x) {
    const int t = idx / HD, d = idx % HD;
    sm.k[t][d] = kv_element<HD>(k_tile, p.cache_dtype, p.block_size, idx);
    sm.v[t][d] = kv_element<HD>(v_tile, p.cache_dtype, p.block_size, idx);
  }
  __syncthreads();
}

// One (row, block) step for the warp's rows: positions block_start + [0, n) are in sm.
template <int HD>
__device__ void attend_block(const Smem<HD>& sm, RowState<HD>& st, int num_rows, int block_start,
                             int n, float scale) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int row = warp + r * kAttentionWarps;
    if (row >= num_rows) break;
    const int valid = min(n, st.limit[r] - block_start);  // warp-uniform
    if (valid <= 0) continue;
    float s = -FLT_MAX;
    if (lane < valid) {
      float dot = 0.0f;
#pragma unroll 16
      for (int d = 0; d < HD; ++d) dot += sm.q[row][d] * sm.k[lane][d];
      s = dot * scale;
    }
    const float new_m = fmaxf(st.m[r], warp_max(s));
    const float alpha = expf(st.m[r] - new_m);
    const float e = lane < valid ? expf(s - new_m) : 0.0f;
    st.l[r] = st.l[r] * alpha + warp_sum(e);
    st.m[r] = new_m;
#pragma unroll
    for (int i = 0; i < HD / 32; ++i) st.acc[r][i] *= alpha;
    for (int t = 0; t < valid; ++t) {
      const float p = __shfl_sync(0xffffffffu, e, t);
#pragma unroll
      for (int i = 0; i < HD / 32; ++i) st.acc[r][i] += p * sm.v[t][lane + 32 * i];
    }
  }
}

template <int HD>
__global__ void __launch_bounds__(kAttentionThreads)
    prefill_kernel(PagedAttentionParams p, const AttentionSequence* seqs,
                   const PrefillItem* items) {
  __shared__ Smem<HD> sm;
  const PrefillItem item = items[blockIdx.x];
  const int kv_head = blockIdx.y;
  const AttentionSequence seq = seqs[item.seq];
  const int group = p.num_q_heads / p.num_kv_heads;
  const int num_rows = (item.q_end - item.q_begin) * group;
  const int first_pos = seq.context_len - seq.num_queries;
  // Row r is query q_begin + r / group of the sequence, query head kv_head · group + r % group.
  for (int idx = threadIdx.x; idx < num_rows * HD; idx += blockDim.x) {
    const int row = idx / HD, d = idx % HD;
    const int64_t token = seq.query_start + item.q_begin + row / group;
    const int head = kv_head * group + row % group;
    sm.q[row][d] = p.q[token * p.q_stride + static_cast<int64_t>(head) * HD + d];
  }
  RowState<HD> st;
  init_rows(st);
  const int warp = threadIdx.x / 32;
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int row = warp + r * kAttentionWarps;
    st.limit[r] = first_pos + item.q_begin + row / group + 1;
  }
  for (int start = 0; start < item.kv_len; start += p.block_size) {
    const int n = min(p.block_size, item.kv_len - start);
    load_block(sm, p, seq.block_table[start / p.block_size], kv_head, n);
    attend_block(sm, st, num_rows, start, n, p.scale);
  }
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int row = warp + r * kAttentionWarps;
    if (row >= num_rows) break;
    const int64_t token = seq.query_start + item.q_begin + row / group;
    const int head = kv_head * group + row % group;
    float* out = p.out + token * p.out_stride + static_cast<int64_t>(head) * HD;
    const float inv_l = 1.0f / st.l[r];
#pragma unroll
    for (int i = 0; i < HD / 32; ++i) out[lane + 32 * i] = st.acc[r][i] * inv_l;
  }
}

struct DecodeWorkspace {
  float* out;  // [num_seqs, num_q_heads, num_splits, head_dim]
  float* ml;   // [num_seqs, num_q_heads, num_splits, 2]
  const AttentionSequence* seqs;  // [num_seqs] in device memory: the plan's decode sequences
  int num_splits;
};

template <int HD>
__global__ void __launch_bounds__(kAttentionThreads)
    decode_kernel(PagedAttentionParams p, DecodeWorkspace ws) {
  __shared__ Smem<HD> sm;
  const int s = blockIdx.x, kv_head = blockIdx.y, split = blockIdx.z;
  const AttentionSequence seq = ws.seqs[s];
  const int begin = split * kDecodePartitionTokens;
  if (begin >= seq.context_len) return;  // this sequence needs fewer splits
  const int end = min(seq.context_len, begin + kDecodePartitionTokens);
  const int group = p.num_q_heads / p.num_kv_heads;
  for (int idx = threadIdx.x; idx < group * HD; idx += blockDim.x) {
    const int row = idx / HD, d = idx % HD;
    const int head = kv_head * group + row;
    sm.q[row][d] =
        p.q[static_cast<int64_t>(seq.query_start) * p.q_stride + static_cast<int64_t>(head) * HD + d];
  }
  RowState<HD> st;
  init_rows(st);
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) st.limit[r] = end;
  // kDecodePartitionTokens is a multiple of every supported block size, so a partition
  // starts at a block boundary.
  for (int start = begin; start < end; start += p.block_size) {
    const int n = min(p.block_size, end - start);
    load_block(sm, p, seq.block_table[start / p.block_size], kv_head, n);
    attend_block(sm, st, group, start, n, p.scale);
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int row = warp + r * kAttentionWarps;
    if (row >= group) break;
    const int head = kv_head * group + row;
    const int64_t slot = (static_cast<int64_t>(s) * p.num_q_heads + head) * ws.num_splits + split;
#pragma unroll
    for (int i = 0; i < HD / 32; ++i) ws.out[slot * HD + lane + 32 * i] = st.acc[r][i];
    if (lane == 0) {
      ws.ml[slot * 2] = st.m[r];
      ws.ml[slot * 2 + 1] = st.l[r];
    }
  }
}

// Block (seq, q_head), thread d: merges the sequence's partitions in split order.
__global__ void decode_reduce_kernel(PagedAttentionParams p, DecodeWorkspace ws) {
  const int s = blockIdx.x, head = blockIdx.y, d = threadIdx.x;
  const AttentionSequence seq = ws.seqs[s];
  const int splits = (seq.context_len + kDecodePartitionTokens - 1) / kDecodePartitionTokens;
  const int64_t slot0 = (static_cast<int64_t>(s) * p.num_q_heads + head) * ws.num_splits;
  float m = -FLT_MAX;
  for (int i = 0; i < splits; ++i) m = fmaxf(m, ws.ml[(slot0 + i) * 2]);
  float l = 0.0f, acc = 0.0f;
  for (int i = 0; i < splits; ++i) {
    const float w = expf(ws.ml[(slot0 + i) * 2] - m);
    l += w * ws.ml[(slot0 + i) * 2 + 1];
    acc += w * ws.out[(slot0 + i) * p.head_dim + d];
  }
  p.out[static_cast<int64_t>(seq.query_start) * p.out_stride +
        static_cast<int64_t>(head) * p.head_dim + d] = acc / l;
}

}  // namespace

void launch_prefill_attention(const PagedAttentionParams& p, cudaStream_t stream) {
  const AttentionPlan& plan = *p.plan;
  if (plan.prefill_items.empty()) return;
  const dim3 grid(static_cast<unsigned>(plan.prefill_items.size()),
                  static_cast<unsigned>(p.num_kv_heads));
  const AttentionSequence* seqs = plan.prefill_seqs;
  const PrefillItem* items = plan.items;
  constexpr int threads = kAttentionThreads;
  switch (p.head_dim) {
    case 32:
      prefill_kernel<32><<<grid, threads, 0, stream>>>(p, seqs, items);
      break;
    case 64:
      prefill_kernel<64><<<grid, threads, 0, stream>>>(p, seqs, items);
      break;
    case 128:
      prefill_kernel<128><<<grid, threads, 0, stream>>>(p, seqs, items);
      break;
    default:
      STRATA_CHECK(false && "head_dim outside AttentionConfigTable::kHeadDims");
  }
  STRATA_CUDA_CHECK_LAUNCH();
}

void launch_decode_attention(const PagedAttentionParams& p, const DecodePlan& plan,
                             cudaStream_t stream) {
  if (plan.num_splits == 0) return;
  DecodeWorkspace ws{
      .out = static_cast<float*>(p.workspace),
      .ml = reinterpret_cast<float*>(static_cast<char*>(p.workspace) +
                                     align_up(plan.partial_out_floats * 4, 256)),
      .seqs = p.plan->decode_seqs,
      .num_splits = plan.num_splits,
  };
  const dim3 grid(static_cast<unsigned>(plan.grid_x), static_cast<unsigned>(plan.grid_y),
                  static_cast<unsigned>(plan.num_splits));
  switch (p.head_dim) {
    case 32:
      decode_kernel<32><<<grid, plan.threads, 0, stream>>>(p, ws);
      break;
    case 64:
      decode_kernel<64><<<grid, plan.threads, 0, stream>>>(p, ws);
      break;
    case 128:
      decode_kernel<128><<<grid, plan.threads, 0, stream>>>(p, ws);
      break;
    default:
      STRATA_CHECK(false && "head_dim outside AttentionConfigTable::kHeadDims");
  }
  STRATA_CUDA_CHECK_LAUNCH();
  const dim3 reduce_grid(static_cast<unsigned>(plan.grid_x), static_cast<unsigned>(p.num_q_heads));
  decode_reduce_kernel<<<reduce_grid, plan.reduce_threads, 0, stream>>>(p, ws);
  STRATA_CUDA_CHECK_LAUNCH();
}

}  // namespace strata::kernels::cuda
