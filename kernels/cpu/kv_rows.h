// The attention kernels' view of a KV tile (kernels/kv_cache_format.h) as fp32 rows: an fp32
// tile is read in place; any other dtype has its first n rows converted into the caller's
// scratch, once per item and block, while the tile is in L1, and every row of the item then
// reads the converted copy. The conversions are exact (bf16 and fp16 widen, int8 · its fp16
// scale fits fp32), so a value reads the same on every ISA path and in every kernel.
//
// V (attention_row.h) adds, per ISA:
//   void widen_bf16(const uint16_t* x, int64_t n, float* out);
//   void widen_f16(const uint16_t* x, int64_t n, float* out);
//   void dequantize_i8(const int8_t* q, float scale, int n, float* out);  // out = q · scale
// Templates only, like attention_impl.h (isa.h says why).
#pragma once

#include <cstdint>

#include "kernels/dtype.h"
#include "kernels/kv_cache_format.h"

namespace strata::kernels::cpu::detail {

template <class V>
const float* kv_rows(const void* cache, DType dtype, int64_t tile, int block_size, int head_dim,
                     int n, float* scratch) {
  const char* base =
      static_cast<const char*>(cache) + tile * kv_tile_bytes(dtype, block_size, head_dim);
  const int64_t count = static_cast<int64_t>(n) * head_dim;
  switch (dtype) {
    case DType::kBF16:
      V::widen_bf16(reinterpret_cast<const uint16_t*>(base), count, scratch);
      return scratch;
    case DType::kF16:
      V::widen_f16(reinterpret_cast<const uint16_t*>(base), count, scratch);
      return scratch;
    case DType::kI8: {
      const auto* q = reinterpret_cast<const int8_t*>(base);
      const auto* scales = reinterpret_cast<const uint16_t*>(
          base + kv_tile_value_bytes(DType::kI8, block_size, head_dim));
      const int groups = kv_scale_groups(head_dim);
      for (int r = 0; r < n; ++r) {
        for (int g = 0; g < groups; ++g) {
          const int c = g * kKvScaleGroup;
          const int width = head_dim - c < kKvScaleGroup ? head_dim - c : kKvScaleGroup;
          const int64_t at = static_cast<int64_t>(r) * head_dim + c;
          V::dequantize_i8(q + at, f16_to_f32(scales[r * groups + g]), width, scratch + at);
        }
      }
      return scratch;
    }
    default:
      return reinterpret_cast<const float*>(base);
  }
}

}  // namespace strata::kernels::cpu::detail
