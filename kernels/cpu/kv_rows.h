// How the attention kernels read a KV tile (kernels/kv_cache_format.h): converted to fp32
// inside the kernel, in registers or one block at a time in L1 (kInt8InPlaceMaxGroup), never
// as a copy of the cache. The conversions are exact (bf16 and fp16 widen, an int8 value
// times its fp16 scale fits fp32), so every kernel on every ISA path sees the values an fp32 cache of the decoded
// tile would hold, and runs that cache's arithmetic on them: the dtype never changes a row's
// operations, only where its operands come from.
//
// Each ISA's primitives type V (attention_row.h) defines `template <DType D> struct Rows`
// with its loads; the kernels build one per (tile, block) from a KvTile. Templates only,
// like attention_impl.h (isa.h says why).
#pragma once

#include <cstdint>

#include "kernels/dtype.h"
#include "kernels/kv_cache_format.h"
#include "kernels/ops.h"

namespace strata::kernels::cpu::detail {

// One (block, KV head) tile as the primitives read it: values in the dtype its Rows type is
// for and, for int8, its rows' scales as fp32 ([rows, groups]).
struct KvTile {
  const void* values = nullptr;
  const float* scales = nullptr;
  int head_dim = 0;
  int groups = 0;
};

// Up to this many query rows per KV head, an int8 tile is read in place, each vector
// widened, converted and scaled in registers; above it (GQA groups of 4 and more) that
// conversion, repeated for every row of the group, costs more than the bytes it saves, and
// the block is converted once per item into an fp32 block in the item's workspace, which
// stays in L1 while the rows read it. bf16 and fp16 always widen in registers (one shift or
// vcvtph2ps per vector). Either way the values, and so the bits of every row, are the same.
inline constexpr int kInt8InPlaceMaxGroup = 2;

// Floats of per-tile scratch one tile needs (an int8 block's fp32 image, or its scales).
template <class = void>
int64_t kv_tile_scratch_floats(int block_size, int head_dim) {
  return static_cast<int64_t>(block_size) * head_dim;
}

// Tile `tile` of a `D` cache, its first n rows readable by Rows<Read>: an int8 tile read as
// fp32 is converted into `scratch`, one read as int8 has its scales converted there.
template <DType D, DType Read>
KvTile kv_tile(const void* cache, int64_t tile, int block_size, int head_dim, int n,
               float* scratch) {
  const char* base =
      static_cast<const char*>(cache) + tile * kv_tile_bytes(D, block_size, head_dim);
  KvTile t{.values = base, .head_dim = head_dim, .groups = kv_scale_groups(head_dim)};
  if constexpr (D == DType::kI8) {
    const auto* bits =
        reinterpret_cast<const uint16_t*>(base + kv_tile_value_bytes(D, block_size, head_dim));
    if constexpr (Read == DType::kI8) {
      for (int i = 0; i < n * t.groups; ++i) scratch[i] = f16_to_f32(bits[i]);
      t.scales = scratch;
    } else {
      const auto* q = reinterpret_cast<const int8_t*>(base);
      for (int r = 0; r < n; ++r) {
        for (int g = 0; g < t.groups; ++g) {
          const float scale = f16_to_f32(bits[r * t.groups + g]);
          const int c1 = (g + 1) * kKvScaleGroup < head_dim ? (g + 1) * kKvScaleGroup : head_dim;
          for (int c = g * kKvScaleGroup; c < c1; ++c) {
            scratch[r * head_dim + c] = static_cast<float>(q[r * head_dim + c]) * scale;
          }
        }
      }
      t.values = scratch;
    }
  }
  return t;
}

// Runs fn.template operator()<D, Read>() for the params' cache dtype and the dtype its tiles
// are read in (above): the kernels are compiled once per pair, so neither is tested inside
// their loops.
template <class Fn>
void with_cache_dtype(const PagedAttentionParams& p, Fn&& fn) {
  switch (p.cache_dtype) {
    case DType::kBF16: fn.template operator()<DType::kBF16, DType::kBF16>(); return;
    case DType::kF16: fn.template operator()<DType::kF16, DType::kF16>(); return;
    case DType::kI8:
      if (p.num_q_heads / p.num_kv_heads <= kInt8InPlaceMaxGroup) {
        fn.template operator()<DType::kI8, DType::kI8>();
      } else {
        fn.template operator()<DType::kI8, DType::kF32>();
      }
      return;
    default: fn.template operator()<DType::kF32, DType::kF32>(); return;
  }
}

}  // namespace strata::kernels::cpu::detail
