#include "kernels/cpu/kv_cache_write.h"

#include <cmath>
#include <cstring>

#include "common/check.h"
#include "kernels/kv_cache_format.h"

namespace strata::kernels::cpu {
namespace {

// Stores one row at element `row` of a tile (row = offset inside the block).
void store_row(const float* x, DType dtype, int block_size, int head_dim, int row, char* tile) {
  const int64_t at = static_cast<int64_t>(row) * head_dim;
  switch (dtype) {
    case DType::kF32:
      std::memcpy(reinterpret_cast<float*>(tile) + at, x, sizeof(float) * head_dim);
      return;
    case DType::kBF16: {
      auto* out = reinterpret_cast<uint16_t*>(tile) + at;
      for (int i = 0; i < head_dim; ++i) out[i] = f32_to_bf16(x[i]);
      return;
    }
    case DType::kF16: {
      auto* out = reinterpret_cast<uint16_t*>(tile) + at;
      for (int i = 0; i < head_dim; ++i) out[i] = f32_to_f16(x[i]);
      return;
    }
    case DType::kI8: {
      auto* scales = reinterpret_cast<uint16_t*>(
          tile + kv_tile_value_bytes(DType::kI8, block_size, head_dim));
      quantize_kv_row_int8(x, head_dim, reinterpret_cast<int8_t*>(tile) + at,
                           scales + static_cast<int64_t>(row) * kv_scale_groups(head_dim));
      return;
    }
    default:
      STRATA_CHECK(false && "not a KV cache dtype");
  }
}

}  // namespace

void quantize_kv_row_int8(const float* x, int head_dim, int8_t* q, uint16_t* scales) {
  for (int g = 0; g * kKvScaleGroup < head_dim; ++g) {
    const int begin = g * kKvScaleGroup;
    const int end = begin + kKvScaleGroup < head_dim ? begin + kKvScaleGroup : head_dim;
    float absmax = 0.0f;
    for (int i = begin; i < end; ++i) absmax = std::fmax(absmax, std::fabs(x[i]));
    const float wanted = absmax / kKvInt8Max;
    scales[g] = f32_to_f16(wanted < kKvMaxScale ? wanted : kKvMaxScale);
    const float scale = f16_to_f32(scales[g]);
    for (int i = begin; i < end; ++i) {
      const float r = scale > 0.0f ? std::nearbyint(x[i] / scale) : 0.0f;
      q[i] = static_cast<int8_t>(std::fmin(std::fmax(r, -kKvInt8Max), kKvInt8Max));
    }
  }
}

void kv_cache_write(const KvCacheWriteParams& p) {
  STRATA_CHECK(is_kv_cache_dtype(p.cache_dtype));
  const int64_t tile_bytes = kv_tile_bytes(p.cache_dtype, p.block_size, p.head_dim);
  for (int64_t t = 0; t < p.t; ++t) {
    const int64_t slot = p.slot_mapping[t];
    if (slot < 0) continue;  // padding token: nothing to cache
    const int64_t block = slot / p.block_size;
    const int offset = static_cast<int>(slot % p.block_size);
    for (int h = 0; h < p.num_kv_heads; ++h) {
      const int64_t tile = (block * p.num_kv_heads + h) * tile_bytes;
      const int64_t col = static_cast<int64_t>(h) * p.head_dim;
      store_row(p.k + t * p.k_stride + col, p.cache_dtype, p.block_size, p.head_dim, offset,
                static_cast<char*>(p.k_cache) + tile);
      store_row(p.v + t * p.v_stride + col, p.cache_dtype, p.block_size, p.head_dim, offset,
                static_cast<char*>(p.v_cache) + tile);
    }
  }
}

}  // namespace strata::kernels::cpu
