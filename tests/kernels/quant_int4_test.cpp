// Int4 quantization: ggml Q4_0's bytes for a hand-worked block, the round-trip error bound
// for every group size and input dtype, exact round trips, the kTiled size, and clear
// refusals of shapes the kernels cannot hold.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/dtype.h"
#include "kernels/ops.h"
#include "kernels/quant_int4.h"
#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels {
namespace {

using testing::random_floats;

std::vector<uint8_t> quantize(const std::vector<float>& w, int64_t n, int64_t k, int g) {
  std::vector<uint8_t> blocks(static_cast<size_t>(int4_blocks_bytes(n, k, g)));
  const Status s = quantize_int4(
      {.src = w.data(), .dtype = DType::kF32, .dst = blocks.data(), .group_size = g, .n = n,
       .k = k});
  EXPECT_TRUE(s.ok()) << s.to_string();
  return blocks;
}

TEST(QuantInt4, Group32IsGgmlQ4_0ByteForByte) {
  // Largest magnitude −4 → d = 0.5, 1/d = 2: w[i] = −4 + 0.5·i gives q = i exactly for the
  // first half; the second half probes ggml's rounding (half up through the truncating
  // cast) and its saturation at 15.
  std::vector<float> w(32, 0.0f);
  for (int i = 0; i < 16; ++i) w[i] = -4.0f + 0.5f * static_cast<float>(i);
  w[16] = 0.26f;   // 8.5 + 0.52 → 9
  w[17] = 0.24f;   // 8.98 → 8
  w[18] = 3.9f;    // 16.3 → 15 (saturated: 7·d = 3.5)
  w[19] = -0.25f;  // 8.0 → 8: −½ step rounds up to 0
  w[20] = 0.25f;   // 9.0 → 9
  std::vector<int> q(32, 8);
  for (int i = 0; i < 16; ++i) q[i] = i;
  q[16] = 9, q[17] = 8, q[18] = 15, q[19] = 8, q[20] = 9;

  const std::vector<uint8_t> block = quantize(w, 1, 32, 32);
  ASSERT_EQ(block.size(), 18u);  // sizeof(block_q4_0)
  uint16_t d;
  std::memcpy(&d, block.data(), 2);
  EXPECT_EQ(d, f32_to_f16(0.5f));
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(block[2 + i], q[i] | q[i + 16] << 4) << "byte " << i;
  }
  std::vector<float> back(32);
  dequantize_int4(block.data(), 32, 1, 32, back.data());
  for (int i = 0; i < 16; ++i) EXPECT_EQ(back[i], w[i]);
  EXPECT_EQ(back[18], 3.5f);
}

TEST(QuantInt4, PositiveMaximumGivesNegativeScaleAndStaysExact) {
  std::vector<float> w(64, 0.0f);
  w[5] = 4.0f;
  w[40] = -3.5f;
  const std::vector<uint8_t> block = quantize(w, 1, 64, 64);
  uint16_t d;
  std::memcpy(&d, block.data(), 2);
  EXPECT_EQ(f16_to_f32(d), -0.5f);
  std::vector<float> back(64);
  dequantize_int4(block.data(), 64, 1, 64, back.data());
  EXPECT_EQ(back, w);
}

// |w − ŵ| ≤ |d|·(½ + 2⁻⁸) below the saturation point and |d|·(1 + 2⁻⁸) at it (the fp16
// rounding of d moves a value by at most 8·|d|·2⁻¹¹).
TEST(QuantInt4, RoundTripErrorIsBoundedByTheGroupScaleForEveryGroupSizeAndDtype) {
  const int64_t n = 7, k = 384;
  for (int g : kInt4GroupSizes) {
    for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
      SCOPED_TRACE(::testing::Message() << "g=" << g << " " << dtype_name(dtype));
      auto w = random_floats(static_cast<size_t>(n * k), 5, -2.0f, 2.0f);
      std::vector<uint16_t> w16(w.size());
      for (size_t i = 0; i < w.size(); ++i) {
        w16[i] = dtype == DType::kBF16 ? f32_to_bf16(w[i]) : f32_to_f16(w[i]);
        if (dtype == DType::kBF16) w[i] = bf16_to_f32(w16[i]);
        if (dtype == DType::kF16) w[i] = f16_to_f32(w16[i]);
      }
      std::vector<uint8_t> blocks(static_cast<size_t>(int4_blocks_bytes(n, k, g)));
      const void* src = dtype == DType::kF32 ? static_cast<const void*>(w.data()) : w16.data();
      ASSERT_TRUE(quantize_int4({.src = src, .dtype = dtype, .dst = blocks.data(), .group_size = g,
                                 .n = n, .k = k})
                      .ok());
      std::vector<float> back(w.size());
      dequantize_int4(blocks.data(), g, n, k, back.data());
      double sum_sq = 0.0;
      for (int64_t grp = 0; grp < n * k / g; ++grp) {
        float amax = 0.0f;
        for (int i = 0; i < g; ++i) amax = std::max(amax, std::fabs(w[grp * g + i]));
        const double d = amax / 8.0;
        for (int i = 0; i < g; ++i) {
          const int64_t at = grp * g + i;
          const double err = std::fabs(static_cast<double>(w[at]) - back[at]);
          const bool saturated = std::fabs(w[at]) / d >= 7.5;
          ASSERT_LE(err, d * ((saturated ? 1.0 : 0.5) + 1.0 / 256)) << "at " << at;
          sum_sq += err * err / (d * d);
        }
      }
      // Uniform rounding error has mean square 1/12 of a step.
      EXPECT_LT(sum_sq / static_cast<double>(n * k), 0.1);
    }
  }
}

TEST(QuantInt4, ExactlyRepresentableWeightsRoundTripExactly) {
  const int64_t n = 3, k = 256;
  for (int g : kInt4GroupSizes) {
    std::vector<float> w(static_cast<size_t>(n * k));
    for (int64_t grp = 0; grp < n * k / g; ++grp) {
      const float d = f16_to_f32(f32_to_f16(0.01f * static_cast<float>(grp + 1)));
      for (int i = 0; i < g; ++i) w[grp * g + i] = static_cast<float>((i * 7 + grp) % 16 - 8) * d;
      w[grp * g + 3] = -8.0f * d;  // the largest magnitude, so the scale is d itself
    }
    std::vector<float> back(w.size());
    dequantize_int4(quantize(w, n, k, g).data(), g, n, k, back.data());
    EXPECT_EQ(back, w) << "g=" << g;
  }
}

TEST(QuantInt4, SubnormalAndNanGroupsQuantizeToValidCodes) {
  // A subnormal maximum makes 1/d infinite; every code must still be one a kernel can
  // read (the value then underflows to 0 in the fp16 scale), and NaN is the value 0.
  const int64_t n = 2, k = 32;
  std::vector<float> w(static_cast<size_t>(n * k), 0.0f);
  for (int i = 0; i < 32; ++i) w[i] = static_cast<float>(i - 16) * 1e-40f;
  for (int i = 32; i < 64; ++i) w[i] = static_cast<float>(i - 48) * 0.25f;
  w[40] = std::nanf("");
  std::vector<float> back(w.size());
  dequantize_int4(quantize(w, n, k, 32).data(), 32, n, k, back.data());
  for (int i = 0; i < 32; ++i) EXPECT_LE(std::fabs(back[i]), 1e-38f) << "at " << i;
  EXPECT_EQ(back[40], 0.0f);
  for (int i = 32; i < 64; ++i) {
    if (i != 40) {
      EXPECT_NEAR(back[i], w[i], 0.5f) << "at " << i;
    }
  }
}

TEST(QuantInt4, RefusesShapesDtypesAndScalesItCannotHoldWithMessagesNamingThem) {
  std::vector<float> w(1000, 0.5f);
  std::vector<uint8_t> dst(2048);
  QuantizeInt4Params p{.src = w.data(), .dtype = DType::kF32, .dst = dst.data(), .group_size = 32,
                       .n = 10, .k = 100};
  Status s = quantize_int4(p);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("multiple of group_size 32"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("k = 100"), std::string::npos) << s.message();

  p.k = 96, p.n = 1, p.group_size = 48;
  s = quantize_int4(p);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("Given: 48"), std::string::npos) << s.message();

  p.group_size = 32, p.dtype = DType::kI8;
  EXPECT_EQ(quantize_int4(p).code(), StatusCode::kInvalidArgument);

  p.dtype = DType::kF32;
  w[40] = 1e6f;  // row 0, group 1: d = 125000 overflows fp16
  s = quantize_int4(p);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("row 0 group 1"), std::string::npos) << s.message();

  EXPECT_EQ(int4_shape_error(4, 0, 32).empty(), false);
  EXPECT_EQ(int4_shape_error(4, 128, 128), "");
}

TEST(QuantInt4, SizesOfBothLayouts) {
  EXPECT_EQ(int4_blocks_bytes(5, 96, 32), 5 * 3 * 18);
  EXPECT_EQ(int4_blocks_bytes(2, 256, 128), 2 * 2 * 66);
  // n = 5, k = 96 (one padded block per row): a 4-row tile of one scale line and 4·64
  // nibble bytes, then a 1-row tile of 64 + 64.
  EXPECT_EQ(int4_tiled_bytes(5, 96, 32), 320 + 128);
  // Whole blocks: 4.5 bits per weight at G = 32, 4.125 at G = 128.
  EXPECT_EQ(int4_tiled_bytes(8, 2048, 32), 8 * 2048 * 9 / 16);
  EXPECT_EQ(int4_tiled_bytes(8, 2048, 128), 8 * 2048 * 33 / 64);
}

}  // namespace
}  // namespace strata::kernels
