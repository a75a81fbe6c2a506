// Built with -ffp-contract=off (worker/CMakeLists.txt): a fused multiply-add would round
// once where the reference rounds twice (d · q − m).
#include "worker/model/gguf_dequantize.h"

#include <cstring>

#include "common/check.h"
#include "kernels/dtype.h"

namespace strata {

namespace {

using gguf::GgmlType;

float half_at(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return f16_to_f32(bits);
}

// Q4_0: fp16 d, 16 bytes of nibbles (low nibbles are elements 0..15, high 16..31).
void q4_0_block(const uint8_t* b, float* out) {
  const float d = half_at(b);
  for (int i = 0; i < 16; ++i) {
    out[i] = d * static_cast<float>((b[2 + i] & 0x0F) - 8);
    out[i + 16] = d * static_cast<float>((b[2 + i] >> 4) - 8);
  }
}

void q4_1_block(const uint8_t* b, float* out) {
  const float d = half_at(b), m = half_at(b + 2);
  for (int i = 0; i < 16; ++i) {
    out[i] = d * static_cast<float>(b[4 + i] & 0x0F) + m;
    out[i + 16] = d * static_cast<float>(b[4 + i] >> 4) + m;
  }
}

// Q5_0 / Q5_1: the fifth bit of element i is bit i of the 32-bit qh.
int five_bit(const uint8_t* qh_bytes, const uint8_t* qs, int i) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  const int low = i < 16 ? (qs[i] & 0x0F) : (qs[i - 16] >> 4);
  return low | static_cast<int>(((qh >> i) & 1u) << 4);
}

void q5_0_block(const uint8_t* b, float* out) {
  const float d = half_at(b);
  for (int i = 0; i < 32; ++i) out[i] = d * static_cast<float>(five_bit(b + 2, b + 6, i) - 16);
}

void q5_1_block(const uint8_t* b, float* out) {
  const float d = half_at(b), m = half_at(b + 2);
  for (int i = 0; i < 32; ++i) out[i] = d * static_cast<float>(five_bit(b + 4, b + 8, i)) + m;
}

void q8_0_block(const uint8_t* b, float* out) {
  const float d = half_at(b);
  for (int i = 0; i < 32; ++i) out[i] = static_cast<float>(static_cast<int8_t>(b[2 + i])) * d;
}

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K super-block.
void k_scale_min(const uint8_t* s, int j, int& scale, int& min) {
  if (j < 4) {
    scale = s[j] & 0x3F;
    min = s[j + 4] & 0x3F;
  } else {
    scale = (s[j + 4] & 0x0F) | ((s[j - 4] >> 2) & 0x30);
    min = (s[j + 4] >> 4) | ((s[j] >> 2) & 0x30);
  }
}

// Q4_K: fp16 d, fp16 dmin, 12 scale bytes, 128 bytes of nibbles; sub-block j of 32 takes
// the low (j even) or high nibbles of bytes 32·(j/2) ... Q5_K has 32 bytes of fifth bits
// (bit j of byte i for sub-block j) between the scales and the nibbles.
void k_quant_block(const uint8_t* b, float* out, bool fifth_bit) {
  const float d = half_at(b), dmin = half_at(b + 2);
  const uint8_t* qh = b + 16;
  const uint8_t* qs = fifth_bit ? b + 48 : b + 16;
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    k_scale_min(b + 4, j, sc, m);
    const float dj = d * static_cast<float>(sc), mj = dmin * static_cast<float>(m);
    const int shift = 4 * (j % 2);
    for (int i = 0; i < 32; ++i) {
      int q = (qs[32 * (j / 2) + i] >> shift) & 0x0F;
      if (fifth_bit) q |= ((qh[i] >> j) & 1) << 4;
      out[32 * j + i] = dj * static_cast<float>(q) - mj;
    }
  }
}

void q4_k_block(const uint8_t* b, float* out) { k_quant_block(b, out, false); }
void q5_k_block(const uint8_t* b, float* out) { k_quant_block(b, out, true); }

// Q6_K: 128 bytes of low nibbles, 64 of high 2-bit pairs, 16 int8 scales (one per 16
// elements), fp16 d last. Element v = 128·h + r: low nibble from byte 64·h + r % 64
// (shifted by 4 when r ≥ 64), high bits from byte 32·h + r % 32 (shifted by 2·(r / 32)).
void q6_k_block(const uint8_t* b, float* out) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* scales = reinterpret_cast<const int8_t*>(b + 192);
  const float d = half_at(b + 208);
  for (int v = 0; v < 256; ++v) {
    const int h = v / 128, r = v % 128;
    const int low = (ql[64 * h + r % 64] >> (4 * (r / 64))) & 0x0F;
    const int high = (qh[32 * h + r % 32] >> (2 * (r / 32))) & 0x03;
    const float dv = d * static_cast<float>(scales[v / 16]);
    out[v] = dv * static_cast<float>((low | (high << 4)) - 32);
  }
}

using BlockFn = void (*)(const uint8_t*, float*);

BlockFn block_fn(GgmlType type) {
  switch (type) {
    case GgmlType::kQ4_0: return q4_0_block;
    case GgmlType::kQ4_1: return q4_1_block;
    case GgmlType::kQ5_0: return q5_0_block;
    case GgmlType::kQ5_1: return q5_1_block;
    case GgmlType::kQ8_0: return q8_0_block;
    case GgmlType::kQ4_K: return q4_k_block;
    case GgmlType::kQ5_K: return q5_k_block;
    case GgmlType::kQ6_K: return q6_k_block;
    default: return nullptr;
  }
}

}  // namespace

bool can_dequantize(GgmlType type) {
  return type == GgmlType::kF32 || type == GgmlType::kF16 || type == GgmlType::kBF16 ||
         block_fn(type) != nullptr;
}

void dequantize_gguf(GgmlType type, const uint8_t* src, int64_t count, float* out) {
  switch (type) {
    case GgmlType::kF32: std::memcpy(out, src, count * 4); return;
    case GgmlType::kF16:
      for (int64_t i = 0; i < count; ++i) out[i] = half_at(src + 2 * i);
      return;
    case GgmlType::kBF16:
      for (int64_t i = 0; i < count; ++i) {
        uint16_t bits;
        std::memcpy(&bits, src + 2 * i, 2);
        out[i] = bf16_to_f32(bits);
      }
      return;
    default: break;
  }
  const BlockFn fn = block_fn(type);
  const std::optional<gguf::BlockShape> shape = gguf::ggml_block_shape(type);
  STRATA_CHECK(fn != nullptr && shape && count % shape->elements == 0);
  for (int64_t b = 0; b < count / shape->elements; ++b) {
    fn(src + b * shape->bytes, out + b * shape->elements);
  }
}

}  // namespace strata
