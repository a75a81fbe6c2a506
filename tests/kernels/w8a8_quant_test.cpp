// int8 quantization (kernels/ops.h, W8A8): weights at load time and the fused activation
// ops, against the rule written out independently (std::nearbyint, division) and against
// double-precision references; zero and tiny rows; strides.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/dtype.h"
#include "kernels/ops.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/kernels/w8a8_test_util.h"

namespace strata::kernels {
namespace {

using testing::random_floats;

float rule_scale(float amax) { return amax >= kInt8MinAmax ? amax / 127.0f : 0.0f; }

int rule_q(float v, float amax) {
  if (!(amax >= kInt8MinAmax)) return 0;
  const float r = std::nearbyint(v * (127.0f / amax));  // round half to even
  return static_cast<int>(std::fmax(-127.0f, std::fmin(127.0f, r)));
}

// Distance in units in the last place between two positive floats.
int64_t ulps(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  return std::abs(int64_t{ia} - ib);
}

TEST(QuantizeWeightsInt8, FollowsTheRuleAndBoundsTheErrorPerChannelAndGroup) {
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (int64_t k : {1, 33, 100, 256}) {
      for (int64_t group : {0, 32, 64, 128}) {
        SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " k=" << k << " group=" << group);
        const int64_t n = 7;
        auto wf = random_floats(static_cast<size_t>(n * k), 1, -2.0f, 2.0f);
        for (int64_t kk = 0; kk < k; ++kk) wf[2 * k + kk] = 0.0f;     // a zero row
        for (int64_t kk = 0; kk < k; ++kk) wf[5 * k + kk] *= 1e-32f;  // below kInt8MinAmax
        std::vector<uint16_t> w16(wf.size());
        for (size_t i = 0; i < wf.size(); ++i) {
          w16[i] = dtype == DType::kBF16 ? f32_to_bf16(wf[i]) : f32_to_f16(wf[i]);
          if (dtype != DType::kF32) {
            wf[i] = dtype == DType::kBF16 ? bf16_to_f32(w16[i]) : f16_to_f32(w16[i]);
          }
        }
        const int64_t groups = w8a8_num_groups(k, group), group_k = group == 0 ? k : group;
        std::vector<int8_t> q(wf.size(), 99);
        std::vector<float> scales(static_cast<size_t>(n * groups), -1.0f);
        quantize_weights_int8({.w = dtype == DType::kF32 ? static_cast<const void*>(wf.data())
                                                         : w16.data(),
                               .w_dtype = dtype, .n = n, .k = k, .group_size = group,
                               .q = q.data(), .scales = scales.data()});
        for (int64_t j = 0; j < n; ++j) {
          for (int64_t g = 0; g < groups; ++g) {
            const int64_t end = std::min(k, (g + 1) * group_k);
            float amax = 0.0f;
            for (int64_t kk = g * group_k; kk < end; ++kk) {
              amax = std::fmax(amax, std::fabs(wf[j * k + kk]));
            }
            const float s = scales[j * groups + g];
            ASSERT_EQ(s, rule_scale(amax)) << "row " << j << " group " << g;
            int most = 0;
            for (int64_t kk = g * group_k; kk < end; ++kk) {
              const float v = wf[j * k + kk];
              ASSERT_EQ(q[j * k + kk], rule_q(v, amax)) << j << " " << kk;
              most = std::max(most, std::abs(int{q[j * k + kk]}));
              if (s > 0) {
                ASSERT_LE(std::fabs(q[j * k + kk] * double{s} - v), s * (0.5 + 1e-4));
              }
            }
            ASSERT_EQ(most, s > 0 ? 127 : 0);
          }
        }
      }
    }
  }
}

// One row checked three ways: (1) exactly the rule applied to `unfused` (the unfused op's
// output bits); (2) against the double reference `exact`: each q is the nearest integer to
// exact · 127 / amax except within 1e-3 of a half, where the fp32 value may round either
// way, and the scale within 2 ulps (its fp32 inputs carry up to three roundings of their
// own); (3) the padding after the row is untouched.
void check_row(const float* unfused, const double* exact, int64_t n, const int8_t* q,
               float scale, int8_t pad) {
  float amax = 0.0f;
  double amax_exact = 0.0;
  for (int64_t j = 0; j < n; ++j) {
    amax = std::fmax(amax, std::fabs(unfused[j]));
    amax_exact = std::fmax(amax_exact, std::fabs(exact[j]));
  }
  ASSERT_EQ(scale, rule_scale(amax));
  if (amax_exact > 1e-20) {
    ASSERT_LE(ulps(scale, static_cast<float>(amax_exact / 127)), 2);
  }
  for (int64_t j = 0; j < n; ++j) {
    ASSERT_EQ(q[j], rule_q(unfused[j], amax)) << "col " << j;
    if (amax_exact <= 1e-20) continue;
    const double r = exact[j] * 127.0 / amax_exact;
    const double frac = std::fabs(r - std::trunc(r));
    if (std::fabs(frac - 0.5) < 1e-3) {
      ASSERT_LE(std::fabs(q[j] - r), 0.5 + 1e-3) << "col " << j;
    } else {
      ASSERT_EQ(q[j], std::lround(r)) << "col " << j << " exact " << r;
    }
  }
  ASSERT_EQ(q[n], pad);
}

TEST(RmsNormQuant, IsRmsNormQuantizedWithStrides) {
  for (int64_t m : {1, 19, 111}) {
    for (int64_t n : {64, 172, 2048}) {
      SCOPED_TRACE(::testing::Message() << "m=" << m << " n=" << n);
      const int64_t ldx = n + 4, ldo = n + 3;
      auto x = random_floats(static_cast<size_t>(m * ldx), 1, -3.0f, 3.0f);
      for (int64_t j = 0; j < n; ++j) x[j] = 0.0f;  // row 0 all zero
      if (m > 1) x[ldx + 7] = 40.0f;                 // an outlier
      const auto weight = random_floats(static_cast<size_t>(n), 2, 0.5f, 1.5f);
      std::vector<float> unfused(static_cast<size_t>(m * n));
      cpu_backend().rmsnorm({.x = x.data(), .ldx = ldx, .weight = weight.data(),
                             .out = unfused.data(), .ldo = n, .m = m, .n = n});
      std::vector<int8_t> q(static_cast<size_t>(m * ldo), 0x55);
      std::vector<float> scale(static_cast<size_t>(m), -1.0f);
      cpu_backend().rmsnorm_quant({.x = x.data(), .ldx = ldx, .weight = weight.data(),
                                   .out = q.data(), .ldo = ldo, .scale = scale.data(),
                                   .m = m, .n = n});
      ASSERT_EQ(scale[0], 0.0f);
      for (int64_t i = 0; i < m; ++i) {
        double ss = 0.0;
        for (int64_t j = 0; j < n; ++j) ss += double{x[i * ldx + j]} * x[i * ldx + j];
        const double inv = 1.0 / std::sqrt(ss / n + 1e-5);
        std::vector<double> exact(static_cast<size_t>(n));
        for (int64_t j = 0; j < n; ++j) exact[j] = x[i * ldx + j] * inv * weight[j];
        SCOPED_TRACE(::testing::Message() << "row " << i);
        check_row(unfused.data() + i * n, exact.data(), n, q.data() + i * ldo, scale[i],
                  0x55);
      }
    }
  }
}

TEST(SiluMulQuant, IsSiluMulQuantizedWithStrides) {
  for (int64_t t : {1, 19, 111}) {
    for (int64_t f : {64, 172, 5632}) {
      SCOPED_TRACE(::testing::Message() << "t=" << t << " f=" << f);
      const int64_t ld_in = 2 * f + 5, ld_out = f + 3;
      auto gate_up = random_floats(static_cast<size_t>(t * ld_in), 3, -6.0f, 6.0f);
      for (int64_t j = 0; j < f; ++j) gate_up[j] = 0.0f;  // row 0: silu(0) = 0
      if (t > 1) {  // row 1: so small that 127 / amax would overflow
        for (int64_t j = 0; j < f; ++j) gate_up[ld_in + f + j] *= 1e-36f;
      }
      std::vector<float> unfused(static_cast<size_t>(t * f));
      cpu_backend().silu_mul({.gate_up = gate_up.data(), .ld_in = ld_in, .out = unfused.data(),
                              .ld_out = f, .t = t, .f = f});
      std::vector<int8_t> q(static_cast<size_t>(t * ld_out), 0x55);
      std::vector<float> scale(static_cast<size_t>(t), -1.0f);
      cpu_backend().silu_mul_quant({.gate_up = gate_up.data(), .ld_in = ld_in, .out = q.data(),
                                    .ld_out = ld_out, .scale = scale.data(), .t = t, .f = f});
      ASSERT_EQ(scale[0], 0.0f);
      if (t > 1) {
        ASSERT_EQ(scale[1], 0.0f);
      }
      for (int64_t i = 0; i < t; ++i) {
        std::vector<double> exact(static_cast<size_t>(f));
        for (int64_t j = 0; j < f; ++j) {
          const double g = gate_up[i * ld_in + j], up = gate_up[i * ld_in + f + j];
          exact[j] = g / (1.0 + std::exp(-g)) * up;
        }
        SCOPED_TRACE(::testing::Message() << "row " << i);
        check_row(unfused.data() + i * f, exact.data(), f, q.data() + i * ld_out, scale[i], 0x55);
      }
    }
  }
}

// Rows are independent: a row's bits do not depend on the batch or the thread count.
TEST(RmsNormQuant, RowIsBitIdenticalAloneAndInBatchAcrossThreads) {
  const int64_t m = 64, n = 2048;
  const auto x = random_floats(static_cast<size_t>(m * n), 5, -3.0f, 3.0f);
  const auto weight = random_floats(static_cast<size_t>(n), 6);
  std::vector<int8_t> batch(static_cast<size_t>(m * n)), alone(static_cast<size_t>(n));
  std::vector<float> batch_scale(static_cast<size_t>(m)), alone_scale(1);
  set_cpu_threads(2);
  cpu_backend().rmsnorm_quant({.x = x.data(), .ldx = n, .weight = weight.data(),
                               .out = batch.data(), .ldo = n, .scale = batch_scale.data(),
                               .m = m, .n = n});
  set_cpu_threads(1);
  for (int64_t i : {0, 31, 63}) {
    cpu_backend().rmsnorm_quant({.x = x.data() + i * n, .ldx = n, .weight = weight.data(),
                                 .out = alone.data(), .ldo = n, .scale = alone_scale.data(),
                                 .m = 1, .n = n});
    ASSERT_EQ(0, std::memcmp(alone.data(), batch.data() + i * n, static_cast<size_t>(n)));
    ASSERT_EQ(alone_scale[0], batch_scale[i]);
  }
  set_cpu_threads(0);
}

}  // namespace
}  // namespace strata::kernels
