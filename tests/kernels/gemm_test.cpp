// GEMM against a double-precision reference at awkward shapes, for every weight dtype and
// every CPU path; and bitwise batch invariance (rows alone vs in a batch, thread counts,
// n-splits).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/dtype.h"
#include "kernels/ops.h"
#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels {
namespace {

using testing::cpu_gemm;
using testing::for_each_isa;
using testing::random_floats;

// Weights stored in `dtype`, plus their exact fp32 values for the reference.
struct Weights {
  std::vector<float> f32;
  std::vector<uint16_t> half;  // bf16 or fp16 bits
  std::vector<float> exact;
  DType dtype;
  const void* data() const {
    return dtype == DType::kF32 ? static_cast<const void*>(f32.data()) : half.data();
  }
};

Weights make_weights(DType dtype, int64_t n, int64_t k, uint32_t seed) {
  Weights w;
  w.dtype = dtype;
  w.exact = random_floats(static_cast<size_t>(n * k), seed);
  if (dtype == DType::kF32) {
    w.f32 = w.exact;
    return w;
  }
  w.half.resize(w.exact.size());
  for (size_t i = 0; i < w.exact.size(); ++i) {
    w.half[i] = dtype == DType::kBF16 ? f32_to_bf16(w.exact[i]) : f32_to_f16(w.exact[i]);
    w.exact[i] = dtype == DType::kBF16 ? bf16_to_f32(w.half[i]) : f16_to_f32(w.half[i]);
  }
  return w;
}

void run_gemm(const std::vector<float>& x, int64_t ldx, const Weights& w, const float* bias,
              std::vector<float>& y, int64_t ldy, int64_t m, int64_t n, int64_t k,
              bool accumulate) {
  cpu_gemm({.x = x.data(), .ldx = ldx, .w = w.data(), .w_dtype = w.dtype,
                      .bias = bias, .y = y.data(), .ldy = ldy, .m = m, .n = n, .k = k,
                      .accumulate = accumulate});
}

void check_against_reference(DType dtype, int64_t m, int64_t n, int64_t k, bool with_bias,
                             bool accumulate) {
  SCOPED_TRACE(::testing::Message() << "dtype=" << dtype_name(dtype) << " m=" << m
                                    << " n=" << n << " k=" << k << " bias=" << with_bias
                                    << " accumulate=" << accumulate);
  const int64_t ldx = k + 3, ldy = n + 5;  // strides wider than the rows
  const auto x = random_floats(static_cast<size_t>(m * ldx), 1);
  const Weights w = make_weights(dtype, n, k, 2);
  const auto bias = random_floats(static_cast<size_t>(n), 3);
  const auto y0 = random_floats(static_cast<size_t>(m * ldy), 4);
  std::vector<float> y = y0;
  run_gemm(x, ldx, w, with_bias ? bias.data() : nullptr, y, ldy, m, n, k, accumulate);

  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double ref = 0.0, magnitude = 0.0;
      for (int64_t kk = 0; kk < k; ++kk) {
        double xv = x[i * ldx + kk];
        if (dtype == DType::kBF16) xv = bf16_to_f32(f32_to_bf16(x[i * ldx + kk]));
        ref += xv * w.exact[j * k + kk];
        magnitude += std::fabs(xv * w.exact[j * k + kk]);
      }
      if (with_bias) ref += bias[j];
      if (accumulate) ref += y0[i * ldy + j];
      const double tol = 1e-5 * magnitude + 1e-6;
      ASSERT_NEAR(y[i * ldy + j], ref, tol) << "at row " << i << " col " << j;
    }
    // Padding between rows is left alone.
    for (int64_t j = n; j < ldy && i + 1 < m; ++j) ASSERT_EQ(y[i * ldy + j], y0[i * ldy + j]);
  }
}

TEST(Gemm, MatchesDoubleReferenceForEveryDtypeAndPath) {
  for_each_isa([](cpu::CpuIsa) {
    for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
      check_against_reference(dtype, 1, 19, 64, false, false);
      check_against_reference(dtype, 19, 111, 72, true, false);
      check_against_reference(dtype, 111, 37, 172, false, true);
      check_against_reference(dtype, 5, 989, 128, true, true);
      check_against_reference(dtype, 7, 13, 5, false, false);  // k below one SIMD chunk
      check_against_reference(dtype, 2, 6, 2048, false, false);
    }
  });
}

TEST(Gemm, RowResultIsBitIdenticalAloneInBatchAcrossThreadsAndNSplits) {
  for_each_isa([](cpu::CpuIsa) {
    for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
      SCOPED_TRACE(dtype_name(dtype));
      const int64_t m = 37, n = 111, k = 172;
      const auto x = random_floats(static_cast<size_t>(m * k), 11);
      const Weights w = make_weights(dtype, n, k, 12);
      const auto bias = random_floats(static_cast<size_t>(n), 13);

      set_cpu_threads(2);
      std::vector<float> batch(static_cast<size_t>(m * n));
      run_gemm(x, k, w, bias.data(), batch, n, m, n, k, false);

      set_cpu_threads(1);
      for (int64_t i : {int64_t{0}, int64_t{3}, int64_t{18}, int64_t{36}}) {
        std::vector<float> row(x.begin() + i * k, x.begin() + (i + 1) * k);
        std::vector<float> alone(static_cast<size_t>(n));
        run_gemm(row, k, w, bias.data(), alone, n, 1, n, k, false);
        ASSERT_EQ(0, std::memcmp(alone.data(), batch.data() + i * n, n * sizeof(float)))
            << "row " << i << " alone differs from the batch";
      }
      // Rows 5..16 as their own batch of 12 (different row-block alignment).
      {
        std::vector<float> sub(x.begin() + 5 * k, x.begin() + 17 * k);
        std::vector<float> out(static_cast<size_t>(12 * n));
        run_gemm(sub, k, w, bias.data(), out, n, 12, n, k, false);
        ASSERT_EQ(0, std::memcmp(out.data(), batch.data() + 5 * n, 12 * n * sizeof(float)));
      }
      // Columns [40, 77) computed by themselves (the n-split a tensor-parallel rank does).
      {
        const int64_t j0 = 40, nn = 37;
        const size_t el = dtype_size(dtype);
        std::vector<float> out(static_cast<size_t>(m * nn));
        cpu_gemm({.x = x.data(), .ldx = k,
                            .w = static_cast<const char*>(w.data()) + j0 * k * el,
                            .w_dtype = dtype, .bias = bias.data() + j0, .y = out.data(),
                            .ldy = nn, .m = m, .n = nn, .k = k});
        for (int64_t i = 0; i < m; ++i) {
          ASSERT_EQ(0, std::memcmp(out.data() + i * nn, batch.data() + i * n + j0,
                                   nn * sizeof(float)))
              << "row " << i;
        }
      }
    }
  });
}

// Packing changes where weights are read, never how an element is reduced: every path gives
// the row-major bits, at tile and chunk edges (n around 6, k around 16 and 32) and below.
TEST(Gemm, TiledWeightsGiveTheRowMajorBits) {
  for_each_isa([](cpu::CpuIsa) {
    for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
      for (int64_t n : {1, 5, 6, 7, 13, 111}) {
        for (int64_t k : {5, 16, 40, 172, 2048}) {
          for (int64_t m : {1, 2, 5, 37}) {
            SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " m=" << m << " n=" << n
                                              << " k=" << k);
            const auto x = random_floats(static_cast<size_t>(m * k), 31);
            const Weights w = make_weights(dtype, n, k, 32);
            const auto bias = random_floats(static_cast<size_t>(n), 33);
            std::vector<char> packed(static_cast<size_t>(n * k) * dtype_size(dtype));
            const WeightLayout layout = cpu_backend().pack_weights(
                {.src = w.data(), .dst = packed.data(), .dtype = dtype, .n = n, .k = k});
            ASSERT_EQ(layout, WeightLayout::kTiled);
            set_cpu_threads(2);
            std::vector<float> want(static_cast<size_t>(m * n));
            run_gemm(x, k, w, bias.data(), want, n, m, n, k, false);
            const auto y0 = random_floats(static_cast<size_t>(m * n), 34);
            std::vector<float> got = y0, want_acc = y0;
            cpu_gemm({.x = x.data(), .ldx = k, .w = packed.data(), .w_dtype = dtype,
                                .w_layout = layout, .bias = bias.data(), .y = got.data(),
                                .ldy = n, .m = m, .n = n, .k = k, .accumulate = true});
            run_gemm(x, k, w, bias.data(), want_acc, n, m, n, k, true);
            ASSERT_EQ(0, std::memcmp(got.data(), want_acc.data(), got.size() * sizeof(float)));
            set_cpu_threads(1);
            cpu_gemm({.x = x.data(), .ldx = k, .w = packed.data(), .w_dtype = dtype,
                                .w_layout = layout, .bias = bias.data(), .y = got.data(),
                                .ldy = n, .m = m, .n = n, .k = k});
            ASSERT_EQ(0, std::memcmp(got.data(), want.data(), want.size() * sizeof(float)));
          }
        }
      }
    }
  });
}

TEST(Gemm, LargeBatchSpanningActivationChunksMatchesSingleRow) {
  // 300 rows of k = 2048 exceed one L2 chunk of packed activations.
  for_each_isa([](cpu::CpuIsa isa) {
    if (isa == cpu::CpuIsa::kScalar) return;  // no chunking there; too slow to matter
    const int64_t m = 300, n = 13, k = 2048;
    const auto x = random_floats(static_cast<size_t>(m * k), 21);
    const Weights w = make_weights(DType::kBF16, n, k, 22);
    std::vector<float> batch(static_cast<size_t>(m * n));
    set_cpu_threads(2);
    run_gemm(x, k, w, nullptr, batch, n, m, n, k, false);
    for (int64_t i : {int64_t{0}, int64_t{129}, int64_t{299}}) {
      std::vector<float> row(x.begin() + i * k, x.begin() + (i + 1) * k);
      std::vector<float> alone(static_cast<size_t>(n));
      run_gemm(row, k, w, nullptr, alone, n, 1, n, k, false);
      ASSERT_EQ(0, std::memcmp(alone.data(), batch.data() + i * n, n * sizeof(float)));
    }
  });
}

}  // namespace
}  // namespace strata::kernels
