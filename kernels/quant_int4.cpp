#include "kernels/quant_int4.h"

#include <omp.h>

#include <atomic>
#include <cmath>
#include <cstring>

#include "common/check.h"
#include "kernels/cpu/gemm_w4a16.h"

namespace strata::kernels {
namespace {

float load_weight(const void* src, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::kBF16: return bf16_to_f32(static_cast<const uint16_t*>(src)[i]);
    case DType::kF16: return f16_to_f32(static_cast<const uint16_t*>(src)[i]);
    default: return static_cast<const float*>(src)[i];
  }
}

// The truncating cast and saturation at 15 of ggml, clamped in float first: a subnormal
// group maximum makes 1/d infinite, and a NaN weight (a corrupt file) must give code 8 (the
// value 0); casting either to an integer is undefined (UBSan found it through fuzz_gguf).
uint8_t int4_code(float v) {
  if (!(v == v)) return 8;
  return static_cast<uint8_t>(std::fmin(std::fmax(v, 0.0f), 15.0f));
}

// ggml's quantize_row_q4_0_ref for one group of `g` weights (g = 32 there): the signed
// weight of largest magnitude sets d = max / −8 (the first one on ties, as ggml scans), q
// rounds w / d half up through the truncating int8 cast and saturates at 15. Returns false
// when d overflows fp16.
bool quantize_group(const float* w, int g, uint8_t* block) {
  float amax = 0.0f, max = 0.0f;
  for (int i = 0; i < g; ++i) {
    if (amax < std::fabs(w[i])) {
      amax = std::fabs(w[i]);
      max = w[i];
    }
  }
  const float d = max / -8;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const uint16_t d16 = f32_to_f16(d);
  if ((d16 & 0x7c00) == 0x7c00) return false;  // inf: |max| beyond 8 · 65504
  std::memcpy(block, &d16, 2);                 // little-endian, as GGUF stores it
  uint8_t* qs = block + 2;
  for (int i = 0; i < g / 2; ++i) {
    qs[i] = static_cast<uint8_t>(int4_code(w[i] * id + 8.5f) | int4_code(w[i + g / 2] * id + 8.5f) << 4);
  }
  return true;
}

}  // namespace

std::string int4_shape_error(int64_t n, int64_t k, int group_size) {
  bool known = false;
  for (int g : kInt4GroupSizes) known = known || g == group_size;
  if (!known) {
    return fmt::format("int4 group_size must be 32, 64 or 128. Given: {}", group_size);
  }
  if (k <= 0 || k % group_size != 0) {
    return fmt::format(
        "int4 weights need k (the input dimension) to be a positive multiple of group_size "
        "{}. Given: k = {}; quantize this matrix with a group size that divides k, or keep "
        "it in 16 bits",
        group_size, k);
  }
  if (n < 0) return fmt::format("int4 weights need n >= 0. Given: {}", n);
  return "";
}

int64_t int4_blocks_bytes(int64_t n, int64_t k, int group_size) {
  return n * (k / group_size) * (2 + group_size / 2);
}

int64_t int4_tiled_bytes(int64_t n, int64_t k, int group_size) {
  return cpu::int4_rows_bytes(n, k, group_size);
}

Status quantize_int4(const QuantizeInt4Params& p) {
  if (const std::string error = int4_shape_error(p.n, p.k, p.group_size); !error.empty()) {
    return invalid_argument("{}", error);
  }
  if (p.dtype != DType::kF32 && p.dtype != DType::kBF16 && p.dtype != DType::kF16) {
    return invalid_argument("int4 quantization reads fp32, bf16 or fp16 weights. Given: {}",
                            dtype_name(p.dtype));
  }
  STRATA_CHECK(p.src != nullptr && p.dst != nullptr);
  const int g = p.group_size;
  const int64_t groups = p.k / g, block_bytes = 2 + g / 2;
  std::atomic<int64_t> bad_group{-1};  // row · groups + group of an overflowing scale
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < p.n; ++j) {
    float w[128];
    auto* row = static_cast<uint8_t*>(p.dst) + j * groups * block_bytes;
    for (int64_t b = 0; b < groups; ++b) {
      for (int i = 0; i < g; ++i) w[i] = load_weight(p.src, p.dtype, j * p.k + b * g + i);
      if (!quantize_group(w, g, row + b * block_bytes)) bad_group.store(j * groups + b);
    }
  }
  if (const int64_t bad = bad_group.load(); bad >= 0) {
    return invalid_argument(
        "int4 quantization: the scale of row {} group {} overflows fp16 (a weight's "
        "magnitude exceeds 8 x 65504); keep this matrix in 16 bits",
        bad / groups, bad % groups);
  }
  return ok_status();
}

void dequantize_int4(const void* blocks, int group_size, int64_t n, int64_t k, float* out) {
  STRATA_CHECK(int4_shape_error(n, k, group_size).empty());
  const int g = group_size;
  const auto* src = static_cast<const uint8_t*>(blocks);
  for (int64_t b = 0; b < n * (k / g); ++b, src += 2 + g / 2) {
    uint16_t d16;
    std::memcpy(&d16, src, 2);
    const float d = f16_to_f32(d16);
    for (int i = 0; i < g / 2; ++i) {
      out[b * g + i] = static_cast<float>((src[2 + i] & 15) - 8) * d;
      out[b * g + i + g / 2] = static_cast<float>((src[2 + i] >> 4) - 8) * d;
    }
  }
}

}  // namespace strata::kernels
