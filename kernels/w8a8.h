// The backend-independent half of W8A8 (kernels/ops.h): the int8 rounding rule for host
// code, and the parameter checks every backend runs, so a wrong call reads the same error
// on the CPU and on the GPU (the field, the limit and the value given).
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/ops.h"

namespace strata::kernels {

struct Int8Scale {
  float scale = 0.0f;  // amax / 127: what the GEMM multiplies by
  float inv = 0.0f;    // 127 / amax: what quantization multiplies by
};

// `static`: the CPU ISA files may include this header (see kernels/cpu/isa.h on linkage).
static inline Int8Scale int8_scale(float amax) {
  if (!(amax >= kInt8MinAmax)) return {};
  return {.scale = amax / 127.0f, .inv = 127.0f / amax};
}

// rne(v · inv) clamped to [−127, 127]. Adding and subtracting 1.5 · 2^23 rounds to an
// integer in the current (nearest-even) mode for |r| < 2^22, in two SSE adds that the
// compiler vectorizes, where std::nearbyint is a library call on baseline x86-64.
static inline int8_t quantize_int8(float v, float inv) {
  constexpr float kRound = 12582912.0f;
  float r = v * inv;
  r = (r + kRound) - kRound;
  r = r == r ? r : 0.0f;  // NaN (a corrupt weight file) becomes 0, not an undefined cast
  r = r > 127.0f ? 127.0f : r;
  r = r < -127.0f ? -127.0f : r;
  return static_cast<int8_t>(r);
}

// Aborts, naming `op`, the field, the limit and the value, unless 1 ≤ k ≤ kInt8MaxK and
// group_size is 0 or a positive multiple of 32.
void check_w8a8_shape(const char* op, int64_t k, int64_t group_size);

// The checks every gemm_w8a8 runs before its own: shapes, strides, pointers, the layout
// this backend reads (`layout`), scales where that layout needs them, the workspace.
void check_gemm_w8a8(const GemmW8A8Params& p, WeightLayout layout, const char* backend);

}  // namespace strata::kernels
