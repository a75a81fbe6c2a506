// gemm_w8a8 on every CPU path against ops.h's arithmetic written out (bit for bit) and a
// double-precision reference, at awkward shapes; bitwise batch invariance; the end-to-end
// error of quantizing fp32 operands against its bound; and the errors for bad calls.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/ops.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/kernels/w8a8_test_util.h"

namespace strata::kernels {
namespace {

using testing::AlignedBytes;
using testing::for_each_isa;
using testing::QuantizedWeights;
using testing::random_floats;

struct Problem {
  int64_t m, n, k, group_size;
};

// Runs cpu gemm_w8a8 on x [m, ldx] into y [m, ldy] (y holds the old values).
void run(const std::vector<int8_t>& x, int64_t ldx, const std::vector<float>& x_scale,
         const AlignedBytes& packed, const Problem& s, const float* bias, std::vector<float>& y,
         int64_t ldy, bool accumulate) {
  const KernelBackend& be = cpu_backend();
  AlignedBytes work(be.gemm_w8a8_workspace_bytes(s.m, s.n, s.k, s.group_size));
  be.gemm_w8a8({.x = x.data(), .ldx = ldx, .x_scale = x_scale.data(), .w = packed.get(),
                .group_size = s.group_size, .bias = bias, .y = y.data(), .ldy = ldy,
                .m = s.m, .n = s.n, .k = s.k, .accumulate = accumulate,
                .workspace = work.get()});
}

void check_against_reference(const Problem& s, bool with_bias, bool accumulate) {
  SCOPED_TRACE(::testing::Message() << "m=" << s.m << " n=" << s.n << " k=" << s.k
                                    << " group=" << s.group_size << " bias=" << with_bias
                                    << " accumulate=" << accumulate);
  const int64_t ldx = s.k + 3, ldy = s.n + 5;  // strides wider than the rows
  const auto x = testing::random_int8(static_cast<size_t>(s.m * ldx), 1);
  auto x_scale = random_floats(static_cast<size_t>(s.m), 2, 1e-3f, 5e-2f);
  x_scale[0] = 0.0f;  // an all-zero activation row
  const QuantizedWeights w = testing::random_quantized(s.n, s.k, s.group_size, 3);
  const AlignedBytes packed = testing::pack_for_cpu(w);
  const auto bias = random_floats(static_cast<size_t>(s.n), 4);
  const auto y0 = random_floats(static_cast<size_t>(s.m * ldy), 5);
  std::vector<float> y = y0;
  run(x, ldx, x_scale, packed, s, with_bias ? bias.data() : nullptr, y, ldy, accumulate);

  for (int64_t i = 0; i < s.m; ++i) {
    for (int64_t j = 0; j < s.n; ++j) {
      double magnitude = 0.0;
      const float want = testing::w8a8_reference(
          x.data() + i * ldx, x_scale[i], w, j, with_bias ? bias.data() : nullptr,
          accumulate ? &y0[i * ldy + j] : nullptr, &magnitude);
      const float got = y[i * ldy + j];
      ASSERT_EQ(std::memcmp(&got, &want, sizeof got), 0)
          << "row " << i << " col " << j << ": " << got << " vs " << want;
      // The written-out arithmetic itself against exact sums in double.
      double exact = 0.0;
      const int64_t group_k = s.group_size == 0 ? s.k : s.group_size;
      for (int64_t g = 0; g < w.groups; ++g) {
        double acc = 0.0;
        for (int64_t kk = g * group_k; kk < std::min(s.k, (g + 1) * group_k); ++kk) {
          acc += static_cast<double>(x[i * ldx + kk]) * w.q[j * s.k + kk];
        }
        exact += acc * w.scales[j * w.groups + g];
      }
      exact *= x_scale[i];
      double scale = magnitude;
      if (with_bias) exact += bias[j], scale += std::fabs(bias[j]);
      if (accumulate) exact += y0[i * ldy + j], scale += std::fabs(y0[i * ldy + j]);
      ASSERT_NEAR(got, exact, 4e-7 * (w.groups + 3) * scale + 1e-30) << i << " " << j;
    }
    for (int64_t j = s.n; j < ldy && i + 1 < s.m; ++j) ASSERT_EQ(y[i * ldy + j], y0[i * ldy + j]);
  }
}

// Matching the written-out arithmetic bit for bit on every path also means every path gives
// the same bits as every other.
TEST(GemmW8A8, MatchesTheExactArithmeticOnEveryPath) {
  for_each_isa([](cpu::CpuIsa) {
    for (int64_t group : {0, 32, 64, 128}) {
      check_against_reference({1, 19, 64, group}, false, false);
      check_against_reference({3, 111, 100, group}, true, false);    // k % 32 != 0
      check_against_reference({17, 64, 172, group}, false, true);    // one full tile
      check_against_reference({5, 130, 257, group}, true, true);     // 3 tiles, k % 4 == 1
      check_against_reference({64, 67, 96, group}, true, false);
      check_against_reference({2, 6, 2048, group}, false, false);
    }
    check_against_reference({7, 13, 5, 0}, true, true);  // k below one block of 4 · 4
    check_against_reference({4, 65, 1, 0}, false, false);
    check_against_reference({3, 9, 31, 32}, false, true);  // one short group
  });
}

// The bits of batch `rows` rows, alone, as a sub-batch, and over a column slice packed by
// itself (a tensor-parallel rank's n-split), with 1 and 2 threads.
TEST(GemmW8A8, RowIsBitIdenticalAloneInBatchAcrossThreadsAndNSplits) {
  for_each_isa([](cpu::CpuIsa) {
    for (int64_t group : {0, 32}) {
      SCOPED_TRACE(::testing::Message() << "group=" << group);
      const Problem s{37, 200, 172, group};
      const auto x = testing::random_int8(static_cast<size_t>(s.m * s.k), 11);
      const auto x_scale = random_floats(static_cast<size_t>(s.m), 12, 1e-3f, 5e-2f);
      const QuantizedWeights w = testing::random_quantized(s.n, s.k, group, 13);
      const AlignedBytes packed = testing::pack_for_cpu(w);
      const auto bias = random_floats(static_cast<size_t>(s.n), 14);

      set_cpu_threads(2);
      std::vector<float> batch(static_cast<size_t>(s.m * s.n));
      run(x, s.k, x_scale, packed, s, bias.data(), batch, s.n, false);

      set_cpu_threads(1);
      for (int64_t i : {0, 3, 18, 36}) {
        std::vector<int8_t> row(x.begin() + i * s.k, x.begin() + (i + 1) * s.k);
        std::vector<float> alone(static_cast<size_t>(s.n));
        run(row, s.k, {x_scale[i]}, packed, {1, s.n, s.k, group}, bias.data(), alone, s.n,
            false);
        ASSERT_EQ(0, std::memcmp(alone.data(), batch.data() + i * s.n, s.n * sizeof(float)))
            << "row " << i;
      }
      {
        std::vector<int8_t> sub(x.begin() + 5 * s.k, x.begin() + 17 * s.k);
        std::vector<float> sub_scale(x_scale.begin() + 5, x_scale.begin() + 17);
        std::vector<float> out(static_cast<size_t>(12 * s.n));
        run(sub, s.k, sub_scale, packed, {12, s.n, s.k, group}, bias.data(), out, s.n, false);
        ASSERT_EQ(0, std::memcmp(out.data(), batch.data() + 5 * s.n, 12 * s.n * sizeof(float)));
      }
      {
        const int64_t j0 = 70, nn = 77;  // not on a tile boundary
        QuantizedWeights slice{.n = nn, .k = s.k, .group_size = group, .groups = w.groups};
        slice.q.assign(w.q.begin() + j0 * s.k, w.q.begin() + (j0 + nn) * s.k);
        slice.scales.assign(w.scales.begin() + j0 * w.groups,
                            w.scales.begin() + (j0 + nn) * w.groups);
        const AlignedBytes slice_packed = testing::pack_for_cpu(slice);
        std::vector<float> out(static_cast<size_t>(s.m * nn));
        run(x, s.k, x_scale, slice_packed, {s.m, nn, s.k, group}, bias.data() + j0, out, nn,
            false);
        for (int64_t i = 0; i < s.m; ++i) {
          ASSERT_EQ(0, std::memcmp(out.data() + i * nn, batch.data() + i * s.n + j0,
                                   nn * sizeof(float)))
              << "row " << i;
        }
      }
    }
  });
}

TEST(GemmW8A8, PrefillBatchWithFewTilesSplitsRowsAndMatchesSingleRows) {
  for_each_isa([](cpu::CpuIsa isa) {
    if (isa == cpu::CpuIsa::kScalar) return;  // too slow to matter
    const Problem s{300, 70, 2048, 0};          // 2 tiles: rows split over threads
    const auto x = testing::random_int8(static_cast<size_t>(s.m * s.k), 21);
    const auto x_scale = random_floats(static_cast<size_t>(s.m), 22, 1e-3f, 5e-2f);
    const QuantizedWeights w = testing::random_quantized(s.n, s.k, 0, 23);
    const AlignedBytes packed = testing::pack_for_cpu(w);
    std::vector<float> batch(static_cast<size_t>(s.m * s.n));
    set_cpu_threads(4);
    run(x, s.k, x_scale, packed, s, nullptr, batch, s.n, false);
    set_cpu_threads(1);
    for (int64_t i : {0, 129, 299}) {
      std::vector<int8_t> row(x.begin() + i * s.k, x.begin() + (i + 1) * s.k);
      std::vector<float> alone(static_cast<size_t>(s.n));
      run(row, s.k, {x_scale[i]}, packed, {1, s.n, s.k, 0}, nullptr, alone, s.n, false);
      ASSERT_EQ(0, std::memcmp(alone.data(), batch.data() + i * s.n, s.n * sizeof(float)));
    }
  });
}

// Quantizing fp32 x (per row) and w (per channel or group) and multiplying: each product
// x·w is off by at most |x|·Δw + |w|·Δx + Δx·Δw with Δ = scale / 2, so the output is within
// the sum of those of the exact fp32 product (plus fp32 rounding of the epilogue).
TEST(GemmW8A8, QuantizedProductStaysWithinTheQuantizationErrorBound) {
  const int64_t m = 9, n = 70, k = 300;
  const auto xf = random_floats(static_cast<size_t>(m * k), 31, -3.0f, 3.0f);
  const auto wf = random_floats(static_cast<size_t>(n * k), 32, -0.2f, 0.2f);
  for (int64_t group : {0, 32, 64}) {
    SCOPED_TRACE(::testing::Message() << "group=" << group);
    const QuantizedWeights xq = testing::quantize(xf, m, k, 0);  // a row's rule is the same
    const QuantizedWeights wq = testing::quantize(wf, n, k, group);
    const AlignedBytes packed = testing::pack_for_cpu(wq);
    std::vector<float> y(static_cast<size_t>(m * n));
    run(xq.q, k, xq.scales, packed, {m, n, k, group}, nullptr, y, n, false);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double exact = 0.0, bound = 0.0, magnitude = 0.0;
        for (int64_t kk = 0; kk < k; ++kk) {
          const double dx = xq.scales[i] / 2;
          const double dw = wq.scales[j * wq.groups + (group != 0 ? kk / group : 0)] / 2;
          const double xv = xf[i * k + kk], wv = wf[j * k + kk];
          exact += xv * wv;
          magnitude += std::fabs(xv * wv);
          bound += std::fabs(xv) * dw + std::fabs(wv) * dx + dx * dw;
        }
        // fp32 epilogue: a rounding per group and step, each within 2^-24 of the magnitude.
        ASSERT_NEAR(y[i * n + j], exact, bound + 2e-6 * magnitude) << i << " " << j;
      }
    }
  }
}

TEST(GemmW8A8DeathTest, BadCallsNameTheFieldAndTheValue) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const KernelBackend& be = cpu_backend();
  EXPECT_DEATH(be.w8a8_packed_bytes(64, 128, 48), "group_size must be 0 .* Given: 48");
  EXPECT_DEATH(be.gemm_w8a8_workspace_bytes(1, 64, 0, 0),
               "k must be in \\[1, 131072\\].* Given: 0");
  const QuantizedWeights w = testing::random_quantized(8, 64, 0, 41);
  const auto x = testing::random_int8(64, 42);
  const std::vector<float> x_scale = {0.01f};
  std::vector<float> y(8);
  AlignedBytes work(be.gemm_w8a8_workspace_bytes(1, 8, 64, 0));
  GemmW8A8Params p{.x = x.data(), .ldx = 64, .x_scale = x_scale.data(), .w = w.q.data(),
                   .w_scale = w.scales.data(), .w_layout = WeightLayout::kRowMajor,
                   .y = y.data(), .ldy = 8, .m = 1, .n = 8, .k = 64, .workspace = work.get()};
  EXPECT_DEATH(be.gemm_w8a8(p), "w_layout must be kInt8Packed");
  p.w_layout = WeightLayout::kInt8Packed;
  p.ldx = 32;
  EXPECT_DEATH(be.gemm_w8a8(p), "ldx >= k and ldy >= n. Given: ldx=32 k=64");
}

}  // namespace
}  // namespace strata::kernels
