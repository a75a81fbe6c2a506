#include "kernels/w8a8.h"

#include <omp.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/check.h"
#include "kernels/dtype.h"

namespace strata::kernels {
namespace {

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "strata: %s\n", message.c_str());
  std::abort();
}

float load_weight(const void* w, DType dtype, int64_t index) {
  switch (dtype) {
    case DType::kBF16: return bf16_to_f32(static_cast<const uint16_t*>(w)[index]);
    case DType::kF16: return f16_to_f32(static_cast<const uint16_t*>(w)[index]);
    default: return static_cast<const float*>(w)[index];
  }
}

// One row's groups: [begin, end) of k per group, scales out.
void quantize_row(const QuantizeWeightsParams& p, int64_t j, int64_t groups, int64_t group_k) {
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t begin = g * group_k;
    const int64_t end = begin + group_k < p.k ? begin + group_k : p.k;
    float amax = 0.0f;
    for (int64_t kk = begin; kk < end; ++kk) {
      amax = std::fmax(amax, std::fabs(load_weight(p.w, p.w_dtype, j * p.k + kk)));
    }
    const Int8Scale s = int8_scale(amax);
    p.scales[j * groups + g] = s.scale;
    for (int64_t kk = begin; kk < end; ++kk) {
      p.q[j * p.k + kk] = quantize_int8(load_weight(p.w, p.w_dtype, j * p.k + kk), s.inv);
    }
  }
}

}  // namespace

int64_t w8a8_num_groups(int64_t k, int64_t group_size) {
  return group_size == 0 ? 1 : (k + group_size - 1) / group_size;
}

void check_w8a8_shape(const char* op, int64_t k, int64_t group_size) {
  if (group_size < 0 || group_size % 32 != 0) {
    fail(std::string(op) + ": group_size must be 0 (per channel) or a positive multiple of "
         "32. Given: " + std::to_string(group_size));
  }
  if (k < 1 || k > kInt8MaxK) {
    fail(std::string(op) + ": k must be in [1, " + std::to_string(kInt8MaxK) +
         "] for exact int32 sums. Given: " + std::to_string(k));
  }
}

void check_gemm_w8a8(const GemmW8A8Params& p, WeightLayout layout, const char* backend) {
  const std::string op = std::string(backend) + " gemm_w8a8";
  check_w8a8_shape(op.c_str(), p.k, p.group_size);
  if (p.m < 0 || p.n < 0) {
    fail(op + ": m and n must be >= 0. Given: m=" + std::to_string(p.m) +
         " n=" + std::to_string(p.n));
  }
  if (p.w_layout != layout) {
    fail(op + ": w_layout must be " +
         (layout == WeightLayout::kInt8Packed ? "kInt8Packed (pack_w8a8's output)"
                                              : "kRowMajor (int8 [n, k])") +
         " on this backend. Given: layout " + std::to_string(static_cast<int>(p.w_layout)));
  }
  if (p.m == 0 || p.n == 0) return;
  if (p.ldx < p.k || p.ldy < p.n) {
    fail(op + ": strides must cover a row: ldx >= k and ldy >= n. Given: ldx=" +
         std::to_string(p.ldx) + " k=" + std::to_string(p.k) + " ldy=" + std::to_string(p.ldy) +
         " n=" + std::to_string(p.n));
  }
  const bool needs_scales = layout == WeightLayout::kRowMajor;
  if (p.x == nullptr || p.x_scale == nullptr || p.w == nullptr || p.y == nullptr ||
      (p.w_scale == nullptr) == needs_scales || p.workspace == nullptr) {
    fail(op + ": x, x_scale, w, y and workspace must be set, and w_scale " +
         (needs_scales ? "too ([n, groups])" : "left null (the packed buffer holds the scales)"));
  }
  if (reinterpret_cast<uintptr_t>(p.workspace) % 64 != 0) {
    fail(op + ": workspace must be 64-byte aligned");
  }
}

void quantize_weights_int8(const QuantizeWeightsParams& p) {
  check_w8a8_shape("quantize_weights_int8", p.k, p.group_size);
  STRATA_CHECK(p.w_dtype == DType::kF32 || p.w_dtype == DType::kBF16 ||
               p.w_dtype == DType::kF16);
  STRATA_CHECK(p.n >= 0 && p.w != nullptr && p.q != nullptr && p.scales != nullptr);
  const int64_t groups = w8a8_num_groups(p.k, p.group_size);
  const int64_t group_k = p.group_size == 0 ? p.k : p.group_size;
  // Load time, rows independent: all cores.
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < p.n; ++j) quantize_row(p, j, groups, group_k);
}

}  // namespace strata::kernels
