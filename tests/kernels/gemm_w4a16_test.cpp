// W4A16 GEMM on every CPU path against a double-precision reference of the same quantized
// arithmetic (weights dequantized exactly, activations rounded to bf16) at awkward shapes
// and every group size; bitwise batch invariance (rows alone vs in a batch, decode and
// panel paths, thread counts, n-splits); refusals of what the kernel cannot run.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels/dtype.h"
#include "kernels/ops.h"
#include "kernels/quant_int4.h"
#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels {
namespace {

using testing::for_each_isa;
using testing::random_floats;

// One quantized matrix in both layouts, and its exact fp32 values.
struct Int4Weights {
  int64_t n = 0, k = 0;
  int g = 32;
  std::vector<uint8_t> blocks, tiled;
  std::vector<float> exact;
};

Int4Weights make_int4(int64_t n, int64_t k, int g, uint32_t seed) {
  Int4Weights w{.n = n, .k = k, .g = g};
  const auto f = random_floats(static_cast<size_t>(n * k), seed);
  w.blocks.resize(static_cast<size_t>(int4_blocks_bytes(n, k, g)));
  const Status s = quantize_int4(
      {.src = f.data(), .dtype = DType::kF32, .dst = w.blocks.data(), .group_size = g, .n = n,
       .k = k});
  EXPECT_TRUE(s.ok()) << s.to_string();
  w.exact.resize(f.size());
  dequantize_int4(w.blocks.data(), g, n, k, w.exact.data());
  w.tiled.resize(static_cast<size_t>(int4_tiled_bytes(n, k, g)));
  const Int4Layout layout = cpu_backend().pack_w4a16(
      {.src = w.blocks.data(), .dst = w.tiled.data(), .group_size = g, .n = n, .k = k});
  EXPECT_EQ(layout, Int4Layout::kTiled);
  return w;
}

// Rows [j0, j0 + nn) of w as a matrix of their own (the slice a tensor-parallel rank holds).
Int4Weights slice_rows(const Int4Weights& w, int64_t j0, int64_t nn) {
  Int4Weights s{.n = nn, .k = w.k, .g = w.g};
  const int64_t row_bytes = int4_blocks_bytes(1, w.k, w.g);
  s.blocks.assign(w.blocks.begin() + j0 * row_bytes, w.blocks.begin() + (j0 + nn) * row_bytes);
  s.tiled.resize(static_cast<size_t>(int4_tiled_bytes(nn, w.k, w.g)));
  cpu_backend().pack_w4a16(
      {.src = s.blocks.data(), .dst = s.tiled.data(), .group_size = w.g, .n = nn, .k = w.k});
  return s;
}

struct Workspace {
  explicit Workspace(int64_t bytes)
      : data(std::aligned_alloc(64, static_cast<size_t>((bytes + 63) / 64 * 64 + 64))) {}
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<void, Free> data;
};

void run_w4(const float* x, int64_t ldx, const Int4Weights& w, const float* bias, float* y,
            int64_t ldy, int64_t m, bool accumulate = false) {
  const KernelBackend& be = cpu_backend();
  Workspace ws(be.gemm_w4a16_workspace_bytes(m, w.k));
  be.gemm_w4a16({.x = x, .ldx = ldx, .w = w.tiled.data(), .w_layout = Int4Layout::kTiled,
                 .group_size = w.g, .bias = bias, .y = y, .ldy = ldy, .m = m, .n = w.n,
                 .k = w.k, .accumulate = accumulate, .workspace = ws.data.get()});
}

void check_against_reference(int64_t m, int64_t n, int64_t k, int g, bool with_bias,
                             bool accumulate) {
  SCOPED_TRACE(::testing::Message() << "m=" << m << " n=" << n << " k=" << k << " g=" << g
                                    << " bias=" << with_bias << " accumulate=" << accumulate);
  const int64_t ldx = k + 3, ldy = n + 5;  // strides wider than the rows
  const auto x = random_floats(static_cast<size_t>(m * ldx), 1, -2.0f, 2.0f);
  const Int4Weights w = make_int4(n, k, g, 2);
  const auto bias = random_floats(static_cast<size_t>(n), 3);
  const auto y0 = random_floats(static_cast<size_t>(m * ldy), 4);
  std::vector<float> y = y0;
  run_w4(x.data(), ldx, w, with_bias ? bias.data() : nullptr, y.data(), ldy, m, accumulate);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double ref = 0.0, magnitude = 0.0;
      for (int64_t kk = 0; kk < k; ++kk) {
        const double p = static_cast<double>(bf16_to_f32(f32_to_bf16(x[i * ldx + kk]))) *
                         w.exact[j * k + kk];
        ref += p;
        magnitude += std::fabs(p);
      }
      if (with_bias) ref += bias[j];
      if (accumulate) ref += y0[i * ldy + j];
      ASSERT_NEAR(y[i * ldy + j], ref, 1e-5 * magnitude + 1e-6) << "at row " << i << " col " << j;
    }
    // Padding between rows is left alone.
    for (int64_t j = n; j < ldy && i + 1 < m; ++j) ASSERT_EQ(y[i * ldy + j], y0[i * ldy + j]);
  }
}

TEST(GemmW4A16, MatchesDoubleReferenceOnEveryPathAndGroupSize) {
  for_each_isa([](cpu::CpuIsa) {
    for (int g : kInt4GroupSizes) {
      check_against_reference(1, 19, 3 * g, g, false, false);   // k ends inside a block
      check_against_reference(3, 111, 4 * g, g, true, false);
      check_against_reference(17, 37, 5 * g, g, false, true);   // m above the panel bound
      check_against_reference(8, 13, 2 * g, g, true, true);     // the largest decode m
      check_against_reference(9, 6, 1024, g, true, false);      // the smallest panel m
      check_against_reference(5, 989, 256, g, true, true);
      check_against_reference(1, 1, g, g, false, false);
      check_against_reference(2, 6, 2048, g, false, false);
    }
  });
}

// Small integers times power-of-two scales: every product and partial sum is exact, so all
// three paths must give the same bits as each other and as the reference.
TEST(GemmW4A16, ExactArithmeticGivesIdenticalBitsOnEveryPath) {
  const int64_t m = 3, n = 9, k = 256;
  for (int g : kInt4GroupSizes) {
    std::vector<float> wf(static_cast<size_t>(n * k)), x(static_cast<size_t>(m * k));
    for (int64_t i = 0; i < n * k; ++i) wf[i] = static_cast<float>(i * 5 % 16 - 8) * 0.25f;
    for (int64_t i = 0; i < m * k; ++i) x[i] = static_cast<float>(i * 3 % 7 - 3);
    std::vector<uint8_t> blocks(static_cast<size_t>(int4_blocks_bytes(n, k, g)));
    ASSERT_TRUE(quantize_int4({.src = wf.data(), .dtype = DType::kF32, .dst = blocks.data(),
                               .group_size = g, .n = n, .k = k})
                    .ok());
    Int4Weights w{.n = n, .k = k, .g = g, .blocks = blocks};
    w.tiled.resize(static_cast<size_t>(int4_tiled_bytes(n, k, g)));
    cpu_backend().pack_w4a16(
        {.src = blocks.data(), .dst = w.tiled.data(), .group_size = g, .n = n, .k = k});
    std::vector<float> want(static_cast<size_t>(m * n));
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j)
        for (int64_t kk = 0; kk < k; ++kk) want[i * n + j] += x[i * k + kk] * wf[j * k + kk];
    for_each_isa([&](cpu::CpuIsa) {
      std::vector<float> y(want.size());
      run_w4(x.data(), k, w, nullptr, y.data(), n, m);
      EXPECT_EQ(y, want) << "g=" << g;
    });
  }
}

TEST(GemmW4A16, RowResultIsBitIdenticalAloneInBatchAcrossThreadsAndNSplits) {
  for_each_isa([](cpu::CpuIsa) {
    for (int g : kInt4GroupSizes) {
      SCOPED_TRACE(::testing::Message() << "g=" << g);
      const int64_t m = 37, n = 111, k = 512;
      const auto x = random_floats(static_cast<size_t>(m * k), 11);
      const Int4Weights w = make_int4(n, k, g, 12);
      const auto bias = random_floats(static_cast<size_t>(n), 13);
      set_cpu_threads(2);
      std::vector<float> batch(static_cast<size_t>(m * n));
      run_w4(x.data(), k, w, bias.data(), batch.data(), n, m);  // the panel path

      set_cpu_threads(1);
      for (int64_t i : {0, 3, 18, 36}) {
        std::vector<float> alone(static_cast<size_t>(n));
        run_w4(x.data() + i * k, k, w, bias.data(), alone.data(), n, 1);
        ASSERT_EQ(0, std::memcmp(alone.data(), batch.data() + i * n, n * sizeof(float)))
            << "row " << i << " alone differs from the batch";
      }
      // Rows 5.. as batches of 4 (decode, in registers) and 12 (panel), other alignments.
      for (int64_t rows : {4, 12}) {
        std::vector<float> out(static_cast<size_t>(rows * n));
        run_w4(x.data() + 5 * k, k, w, bias.data(), out.data(), n, rows);
        ASSERT_EQ(0, std::memcmp(out.data(), batch.data() + 5 * n, rows * n * sizeof(float)))
            << rows << " rows";
      }
      // Columns [41, 78) packed and computed by themselves: tiles start at another row.
      const int64_t j0 = 41, nn = 37;
      const Int4Weights part = slice_rows(w, j0, nn);
      for (int64_t rows : {int64_t{1}, m}) {
        std::vector<float> out(static_cast<size_t>(rows * nn));
        run_w4(x.data(), k, part, bias.data() + j0, out.data(), nn, rows);
        for (int64_t i = 0; i < rows; ++i) {
          ASSERT_EQ(0, std::memcmp(out.data() + i * nn, batch.data() + i * n + j0,
                                   nn * sizeof(float)))
              << "row " << i << " of " << rows;
        }
      }
    }
  });
}

TEST(GemmW4A16, LargeBatchSpanningActivationChunksMatchesSingleRow) {
  // 300 rows of k = 2048 exceed one L2 chunk of packed activations.
  for_each_isa([](cpu::CpuIsa isa) {
    if (isa == cpu::CpuIsa::kScalar) return;  // no chunking there; too slow to matter
    const int64_t m = 300, n = 13, k = 2048;
    const auto x = random_floats(static_cast<size_t>(m * k), 21);
    const Int4Weights w = make_int4(n, k, 64, 22);
    std::vector<float> batch(static_cast<size_t>(m * n));
    set_cpu_threads(2);
    run_w4(x.data(), k, w, nullptr, batch.data(), n, m);
    for (int64_t i : {0, 129, 299}) {
      std::vector<float> alone(static_cast<size_t>(n));
      run_w4(x.data() + i * k, k, w, nullptr, alone.data(), n, 1);
      ASSERT_EQ(0, std::memcmp(alone.data(), batch.data() + i * n, n * sizeof(float)));
    }
  });
}

TEST(GemmW4A16, WorkspaceCoversThePanelsOnlyAboveTheDecodeRows) {
  for_each_isa([](cpu::CpuIsa isa) {
    const KernelBackend& be = cpu_backend();
    if (isa == cpu::CpuIsa::kScalar) {
      EXPECT_EQ(be.gemm_w4a16_workspace_bytes(300, 2048), 0);
      return;
    }
    EXPECT_GT(be.gemm_w4a16_workspace_bytes(1, 2048), 0);  // the rounded activations
    EXPECT_GT(be.gemm_w4a16_workspace_bytes(9, 2048), 2 * be.gemm_w4a16_workspace_bytes(8, 2048));
  });
}

TEST(GemmW4A16DeathTest, RefusesKNotAMultipleOfTheGroupAndUnpackedWeights) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const Int4Weights w = make_int4(4, 128, 32, 31);
  std::vector<float> x(128), y(4);
  GemmW4A16Params p{.x = x.data(), .ldx = 100, .w = w.tiled.data(), .w_layout = Int4Layout::kTiled,
                    .group_size = 32, .y = y.data(), .ldy = 4, .m = 1, .n = 4, .k = 100};
  EXPECT_DEATH(cpu_backend().gemm_w4a16(p), "multiple of group_size 32");
  p.k = 128;
  p.ldx = 128;
  p.w = w.blocks.data();
  p.w_layout = Int4Layout::kBlocks;
  EXPECT_DEATH(cpu_backend().gemm_w4a16(p), "pack_w4a16");
}

}  // namespace
}  // namespace strata::kernels
