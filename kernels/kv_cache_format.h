// The element formats of the paged KV cache, shared by the KV-write kernels (which convert
// or quantize each token's K and V once, as they store it) and the attention kernels (which
// convert it back to fp32 inside the kernel: in registers or a block at a time in L1 on the
// CPU, kernels/cpu/kv_rows.h; in shared memory on CUDA). Plain arithmetic on sizes and the int8 rule, compiled for host and device.
//
// A layer's K (or V) cache is an array of tiles, one per (block, KV head), tile i at byte
// i · kv_tile_bytes(...), i = block · num_kv_heads + kv_head. A tile holds block_size rows
// of head_dim values in the cache dtype (fp32, bf16, fp16 or int8); an int8 tile then holds
// block_size × kv_scale_groups(head_dim) fp16 scales, row-major.
//
// int8: symmetric, one scale per kKvScaleGroup channels of one token's K or V vector of one
// head: scale = fp16(absmax / 127), q = clamp(rint(x / scale), −127, 127), x ≈ q · scale.
// Why these choices:
//   - 64 channels: one group is a whole head of the common head_dim 64 and half of 128, so a
//     scale follows a head's own range; fp16 costs 2 bytes per 64, so an int8 row of head_dim
//     64 takes 66 bytes against bf16's 128 (1.94× the blocks in the same memory; fp32 scales
//     would give 1.88×, smaller groups less still).
//   - symmetric: K and V values centre on zero, and q · scale needs no zero-point term in the
//     attention's inner loops.
//   - q · scale is exact in fp32 (8 × 11 significant bits), so every kernel, CPU or GPU,
//     decodes a value to the same float.
// Quantization reads one token's vector and nothing else, so a token's cache bytes are the
// same whether a prefill chunk or a decode step wrote them (batch invariance).
#pragma once

#include <cstdint>

#include "kernels/dtype.h"

#if defined(__CUDACC__)
#define STRATA_KV_HD __host__ __device__
#else
#define STRATA_KV_HD
#endif

namespace strata::kernels {

inline constexpr int kKvScaleGroup = 64;
inline constexpr float kKvInt8Max = 127.0f;
inline constexpr float kKvMaxScale = 65504.0f;  // the largest finite fp16

// The dtypes a KV cache can hold.
STRATA_KV_HD constexpr bool is_kv_cache_dtype(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kBF16 || dtype == DType::kF16 ||
         dtype == DType::kI8;
}

STRATA_KV_HD constexpr int kv_scale_groups(int head_dim) {
  return (head_dim + kKvScaleGroup - 1) / kKvScaleGroup;
}

STRATA_KV_HD constexpr int64_t kv_element_bytes(DType dtype) {
  return dtype == DType::kF32 ? 4 : dtype == DType::kI8 ? 1 : 2;
}

// Bytes of the values of one tile (the scales, for int8, follow them).
STRATA_KV_HD constexpr int64_t kv_tile_value_bytes(DType dtype, int block_size, int head_dim) {
  return kv_element_bytes(dtype) * block_size * head_dim;
}

STRATA_KV_HD constexpr int64_t kv_tile_bytes(DType dtype, int block_size, int head_dim) {
  const int64_t scales =
      dtype == DType::kI8 ? int64_t{2} * block_size * kv_scale_groups(head_dim) : 0;
  return kv_tile_value_bytes(dtype, block_size, head_dim) + scales;
}

}  // namespace strata::kernels
