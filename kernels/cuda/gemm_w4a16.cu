// W4A16 kernels on Int4Layout::kBlocks weights (GGUF Q4_0 order): the decode GEMV, which
// dequantizes in registers, and the exact bf16 hi/lo dequantization the cuBLAS path of
// larger m reads. Host side: gemm_w4a16.cpp; launch shapes: plan/gemm_w4a16_plan.h. CPU
// twin: kernels/cpu/gemm_w4a16*.cpp.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "common/check.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/launchers.h"

namespace strata::kernels::cuda {
namespace {

// Blocks are 2 + G/2 bytes, so inside one only 2-byte loads are aligned.
__device__ __forceinline__ uint32_t load_u16(const uint8_t* p) {
  return __ldg(reinterpret_cast<const unsigned short*>(p));
}

// Where a 4-byte word of a row's nibbles sits: word `word` of the row (8 weights) is bytes
// 4·wi .. 4·wi + 3 of block b's G/2 nibble bytes, holding weights x0 .. x0 + 3 (low
// nibbles) and x0 + G/2 .. x0 + G/2 + 3 (high nibbles) of the row.
struct WordAt {
  const uint8_t* block;  // the block's first byte (its fp16 d)
  int wi;
  int64_t x0;
};

__device__ __forceinline__ WordAt word_at(const uint8_t* row, int64_t word, int group_log2) {
  const int words_log2 = group_log2 - 3;  // G/8 words per block
  const int64_t b = word >> words_log2;
  const int wi = static_cast<int>(word & ((1 << words_log2) - 1));
  return {row + b * (2 + (1 << (group_log2 - 1))), wi, (b << group_log2) + 4 * wi};
}

// The word's 8 weights as (q − 8) in fp32 (exact), low nibbles first; returns d.
__device__ __forceinline__ float load_word(const WordAt& at, float (&wq)[8]) {
  const float d = __half2float(__ushort_as_half(static_cast<unsigned short>(load_u16(at.block))));
  const uint8_t* qs = at.block + 2 + 4 * at.wi;
  const uint32_t q = load_u16(qs) | load_u16(qs + 2) << 16;
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    wq[e] = static_cast<float>(static_cast<int>((q >> (8 * e)) & 15u) - 8);
    wq[4 + e] = static_cast<float>(static_cast<int>((q >> (8 * e + 4)) & 15u) - 8);
  }
  return d;
}

// Four bf16 at p (8-byte aligned) as fp32.
__device__ __forceinline__ void load_bf16x4(const __nv_bfloat16* p, float* out) {
  const uint2 u = __ldg(reinterpret_cast<const uint2*>(p));
  out[0] = __uint_as_float(u.x << 16);
  out[1] = __uint_as_float(u.x & 0xffff0000u);
  out[2] = __uint_as_float(u.y << 16);
  out[3] = __uint_as_float(u.y & 0xffff0000u);
}

// M activation rows (bf16, [M, k]) against kW4GemvRowsPerBlock weight rows per thread
// block. Per lane and word: s = Σ x·(q − 8) over its 8 weights, acc += d·s; then the warp's
// butterfly sum and the warps' sums in warp order, so a row's bits depend on k only.
template <int M>
__global__ void __launch_bounds__(kW4GemvWarps * 32)
    w4a16_gemv_kernel(const __nv_bfloat16* x, const uint8_t* w, int group_log2, int64_t n,
                      int64_t k, const float* bias, float* y, int64_t ldy, bool accumulate) {
  constexpr int kRows = kW4GemvRowsPerBlock;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const int64_t row_bytes = (k >> group_log2) * (2 + (1 << (group_log2 - 1)));
  const int64_t half = int64_t{1} << (group_log2 - 1), words = k / 8;
  float acc[kRows][M] = {};
  for (int64_t word = static_cast<int64_t>(warp) * 32 + lane; word < words;
       word += kW4GemvWarps * 32) {
    const WordAt at0 = word_at(w + row0 * row_bytes, word, group_log2);
    float xa[M][8];
#pragma unroll
    for (int i = 0; i < M; ++i) {
      load_bf16x4(x + i * k + at0.x0, xa[i]);
      load_bf16x4(x + i * k + at0.x0 + half, xa[i] + 4);
    }
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      if (row0 + r >= n) break;
      const WordAt at{at0.block + r * row_bytes, at0.wi, at0.x0};
      float wq[8];
      const float d = load_word(at, wq);
#pragma unroll
      for (int i = 0; i < M; ++i) {
        float s = 0.0f;
#pragma unroll
        for (int e = 0; e < 8; ++e) s = __fmaf_rn(xa[i][e], wq[e], s);
        acc[r][i] = __fmaf_rn(d, s, acc[r][i]);
      }
    }
  }
  __shared__ float partial[kW4GemvWarps][kRows][M];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
#pragma unroll
    for (int i = 0; i < M; ++i) {
      const float v = warp_sum(acc[r][i]);
      if (lane == 0) partial[warp][r][i] = v;
    }
  }
  __syncthreads();
  for (int t = threadIdx.x; t < kRows * M; t += blockDim.x) {
    const int r = t / M, i = t % M;
    const int64_t row = row0 + r;
    if (row >= n) continue;
    float v = partial[0][r][i];
    for (int wp = 1; wp < kW4GemvWarps; ++wp) v = __fadd_rn(v, partial[wp][r][i]);
    if (bias != nullptr) v = __fadd_rn(v, bias[row]);
    float* out = y + i * ldy + row;
    if (accumulate) v = __fadd_rn(*out, v);
    *out = v;
  }
}

// One thread per (row, word): its 8 weights w = (q − 8)·d (exact in fp32) written as
// hi = bf16(w) and lo = bf16(w − hi). w has at most 14 significant bits (11 of d, 3 of
// q − 8) and hi keeps 8, so lo holds the rest exactly and hi + lo = w.
__global__ void w4a16_dequant_split_kernel(const uint8_t* w, int group_log2, int64_t rows,
                                           int64_t k, __nv_bfloat16* hi, __nv_bfloat16* lo) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t words = k / 8;
  if (idx >= rows * words) return;
  const int64_t row = idx / words;
  const int64_t row_bytes = (k >> group_log2) * (2 + (1 << (group_log2 - 1)));
  const WordAt at = word_at(w + row * row_bytes, idx % words, group_log2);
  float wq[8];
  const float d = load_word(at, wq);
  const int64_t half = int64_t{1} << (group_log2 - 1);
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    const int64_t col = row * k + at.x0 + (e < 4 ? e : half + e - 4);
    const float v = __fmul_rn(wq[e], d);
    const __nv_bfloat16 h = __float2bfloat16_rn(v);
    hi[col] = h;
    lo[col] = __float2bfloat16_rn(__fsub_rn(v, __bfloat162float(h)));
  }
}

int group_log2_of(int group_size) {
  int log2 = 0;
  while ((1 << log2) < group_size) ++log2;
  STRATA_CHECK((1 << log2) == group_size && log2 >= 5);
  return log2;
}

template <int M>
void launch_gemv_rows(const GemmW4A16Params& p, const __nv_bfloat16* x16, const W4A16Plan& plan,
                      cudaStream_t stream) {
  w4a16_gemv_kernel<M><<<grid_dim(plan.blocks), plan.threads, 0, stream>>>(
      x16, static_cast<const uint8_t*>(p.w), group_log2_of(p.group_size), p.n, p.k, p.bias,
      p.y, p.ldy, p.accumulate);
}

}  // namespace

void launch_w4a16_gemv(const GemmW4A16Params& p, const void* x16, const W4A16Plan& plan,
                       cudaStream_t stream) {
  STRATA_CHECK(plan.gemv && p.m >= 1 && p.m <= kW4GemvMaxRows);
  const auto* x = static_cast<const __nv_bfloat16*>(x16);
  switch (p.m) {
    case 1: launch_gemv_rows<1>(p, x, plan, stream); break;
    case 2: launch_gemv_rows<2>(p, x, plan, stream); break;
    case 3: launch_gemv_rows<3>(p, x, plan, stream); break;
    case 4: launch_gemv_rows<4>(p, x, plan, stream); break;
    case 5: launch_gemv_rows<5>(p, x, plan, stream); break;
    case 6: launch_gemv_rows<6>(p, x, plan, stream); break;
    case 7: launch_gemv_rows<7>(p, x, plan, stream); break;
    default: launch_gemv_rows<8>(p, x, plan, stream); break;
  }
  STRATA_CUDA_CHECK_LAUNCH();
}

void launch_w4a16_dequant_split(const void* w, int group_size, int64_t rows, int64_t k, void* hi,
                                void* lo, cudaStream_t stream) {
  constexpr int kThreads = 256;
  const int64_t blocks = plan_flat_blocks(rows * (k / 8), kThreads);
  if (blocks == 0) return;
  w4a16_dequant_split_kernel<<<grid_dim(blocks), kThreads, 0, stream>>>(
      static_cast<const uint8_t*>(w), group_log2_of(group_size), rows, k,
      static_cast<__nv_bfloat16*>(hi), static_cast<__nv_bfloat16*>(lo));
  STRATA_CUDA_CHECK_LAUNCH();
}

}  // namespace strata::kernels::cuda
