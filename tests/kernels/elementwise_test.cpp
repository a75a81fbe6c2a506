// RMSNorm, RoPE, SiLU·mul, KV cache write, embedding, residual add, row gather and copies
// against straightforward references at awkward sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/dtype.h"
#include "kernels/ops.h"
#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels {
namespace {

using testing::random_floats;

TEST(RmsNorm, MatchesReferenceWithStridesAndInPlace) {
  for (int64_t m : {1, 19, 111}) {
    for (int64_t n : {64, 172, 2048}) {
      const int64_t ld = n + 4;
      auto x = random_floats(static_cast<size_t>(m * ld), 1, -3.0f, 3.0f);
      const auto weight = random_floats(static_cast<size_t>(n), 2);
      std::vector<float> out(static_cast<size_t>(m * n));
      const RmsNormParams p{.x = x.data(), .ldx = ld, .weight = weight.data(),
                            .out = out.data(), .ldo = n, .m = m, .n = n, .eps = 1e-5f};
      cpu_backend().rmsnorm(p);
      for (int64_t i = 0; i < m; ++i) {
        double ss = 0.0;
        for (int64_t j = 0; j < n; ++j) ss += double{x[i * ld + j]} * x[i * ld + j];
        const double inv = 1.0 / std::sqrt(ss / n + 1e-5);
        for (int64_t j = 0; j < n; ++j) {
          const double ref = x[i * ld + j] * inv * weight[j];
          ASSERT_NEAR(out[i * n + j], ref, 1e-5 * std::fabs(ref) + 1e-7);
        }
      }
      // In place (out aliases x) gives the same bits.
      RmsNormParams in_place = p;
      in_place.out = x.data();
      in_place.ldo = ld;
      cpu_backend().rmsnorm(in_place);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) ASSERT_EQ(x[i * ld + j], out[i * n + j]);
    }
  }
}

TEST(Rope, RotatesAdjacentPairsOfEveryQAndKHead) {
  const int t = 19, nq = 8, nkv = 2, hd = 64;
  const int64_t q_stride = nq * hd + 8, k_stride = nkv * hd + 8;
  auto q = random_floats(static_cast<size_t>(t * q_stride), 3);
  auto k = random_floats(static_cast<size_t>(t * k_stride), 4);
  const auto q0 = q, k0 = k;
  std::vector<int32_t> positions(t);
  for (int i = 0; i < t; ++i) positions[i] = (i * 977) % 4096;
  std::vector<double> inv_freq(hd / 2);
  for (int i = 0; i < hd / 2; ++i) inv_freq[i] = std::pow(10000.0, -2.0 * i / hd);
  cpu_backend().rope({.q = q.data(), .q_stride = q_stride, .k = k.data(), .k_stride = k_stride,
                      .positions = positions.data(), .inv_freq = inv_freq.data(), .t = t,
                      .num_q_heads = nq, .num_kv_heads = nkv, .head_dim = hd});
  auto check = [&](const std::vector<float>& got, const std::vector<float>& orig,
                   int64_t stride, int heads) {
    for (int i = 0; i < t; ++i) {
      for (int h = 0; h < heads; ++h) {
        for (int e = 0; e < hd / 2; ++e) {
          const double th = positions[i] * inv_freq[e];
          const int64_t a = i * stride + h * hd + 2 * e;
          const double x0 = orig[a], x1 = orig[a + 1];
          ASSERT_NEAR(got[a], x0 * std::cos(th) - x1 * std::sin(th), 2e-6);
          ASSERT_NEAR(got[a + 1], x0 * std::sin(th) + x1 * std::cos(th), 2e-6);
        }
      }
      for (int64_t e = heads * hd; e < stride; ++e)
        ASSERT_EQ(got[i * stride + e], orig[i * stride + e]);  // padding untouched
    }
  };
  check(q, q0, q_stride, nq);
  check(k, k0, k_stride, nkv);
}

TEST(SiluMul, MatchesReference) {
  for (int64_t t : {1, 19, 111}) {
    const int64_t f = 172;
    const auto in = random_floats(static_cast<size_t>(t * 2 * f), 5, -6.0f, 6.0f);
    std::vector<float> out(static_cast<size_t>(t * f));
    cpu_backend().silu_mul({.gate_up = in.data(), .ld_in = 2 * f, .out = out.data(),
                            .ld_out = f, .t = t, .f = f});
    for (int64_t i = 0; i < t; ++i) {
      for (int64_t j = 0; j < f; ++j) {
        const double g = in[i * 2 * f + j], u = in[i * 2 * f + f + j];
        const double ref = g / (1.0 + std::exp(-g)) * u;
        ASSERT_NEAR(out[i * f + j], ref, 1e-5 * std::fabs(ref) + 1e-6);
      }
    }
  }
}

TEST(KvCacheWrite, PlacesEachTokenAtItsSlotAndSkipsNegativeSlots) {
  const int t = 19, nkv = 2, hd = 72, bs = 16, num_blocks = 5;
  const int64_t stride = nkv * hd + 4;
  const auto k = random_floats(static_cast<size_t>(t * stride), 6);
  const auto v = random_floats(static_cast<size_t>(t * stride), 7);
  std::vector<float> kc(static_cast<size_t>(num_blocks) * nkv * bs * hd, 0.0f), vc = kc;
  std::vector<int32_t> slots(t);
  for (int i = 0; i < t; ++i) slots[i] = (i * 37 + 3) % (num_blocks * bs);
  slots[4] = -1;
  cpu_backend().kv_cache_write({.k = k.data(), .v = v.data(), .k_stride = stride,
                                .v_stride = stride, .k_cache = kc.data(), .v_cache = vc.data(),
                                .slot_mapping = slots.data(), .t = t, .num_kv_heads = nkv,
                                .head_dim = hd, .block_size = bs});
  for (int i = 0; i < t; ++i) {
    if (slots[i] < 0) continue;
    const int block = slots[i] / bs, off = slots[i] % bs;
    for (int h = 0; h < nkv; ++h) {
      for (int e = 0; e < hd; ++e) {
        const size_t at = ((static_cast<size_t>(block) * nkv + h) * bs + off) * hd + e;
        ASSERT_EQ(kc[at], k[i * stride + h * hd + e]);
        ASSERT_EQ(vc[at], v[i * stride + h * hd + e]);
      }
    }
  }
}

TEST(Embedding, ConvertsRowsOfEveryTableDtype) {
  const int64_t vocab = 50, dim = 172, t = 19;
  const auto table = random_floats(static_cast<size_t>(vocab * dim), 8);
  std::vector<uint16_t> bf(table.size()), hf(table.size());
  for (size_t i = 0; i < table.size(); ++i) {
    bf[i] = f32_to_bf16(table[i]);
    hf[i] = f32_to_f16(table[i]);
  }
  std::vector<int32_t> ids(t);
  for (int i = 0; i < t; ++i) ids[i] = (i * 13 + 7) % vocab;
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    const void* data = dtype == DType::kF32    ? static_cast<const void*>(table.data())
                       : dtype == DType::kBF16 ? static_cast<const void*>(bf.data())
                                               : static_cast<const void*>(hf.data());
    std::vector<float> out(static_cast<size_t>(t * dim));
    cpu_backend().embedding({.ids = ids.data(), .table = data, .table_dtype = dtype,
                             .table_rows = vocab, .out = out.data(), .t = t, .dim = dim});
    for (int64_t i = 0; i < t; ++i) {
      for (int64_t j = 0; j < dim; ++j) {
        const size_t at = static_cast<size_t>(ids[i] * dim + j);
        const float ref = dtype == DType::kF32    ? table[at]
                          : dtype == DType::kBF16 ? bf16_to_f32(bf[at])
                                                  : f16_to_f32(hf[at]);
        ASSERT_EQ(out[i * dim + j], ref);
      }
    }
  }
}

TEST(Embedding, IdsOutsideTheRankVocabularySliceGiveZeroRows) {
  // This rank holds rows [40, 50) of the vocabulary as table rows 0..9.
  const int64_t rows = 10, begin = 40, dim = 19;
  const auto table = random_floats(static_cast<size_t>(rows * dim), 9);
  const std::vector<int32_t> ids = {39, 40, 45, 49, 50, 0, 47};
  std::vector<float> out(ids.size() * dim, 7.0f);
  cpu_backend().embedding({.ids = ids.data(), .table = table.data(), .table_rows = rows,
                           .id_begin = begin, .out = out.data(),
                           .t = static_cast<int64_t>(ids.size()), .dim = dim});
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t local = ids[i] - begin;
    for (int64_t j = 0; j < dim; ++j) {
      const float want = local >= 0 && local < rows ? table[local * dim + j] : 0.0f;
      ASSERT_EQ(out[i * dim + j], want) << "id " << ids[i] << " column " << j;
    }
  }
}

TEST(Add, AddsIntoStridedRows) {
  const int64_t m = 19, n = 111, ldx = n + 3, ldy = n + 5;
  const auto x = random_floats(static_cast<size_t>(m * ldx), 10);
  auto y = random_floats(static_cast<size_t>(m * ldy), 11);
  const auto y0 = y;
  cpu_backend().add({.x = x.data(), .ldx = ldx, .y = y.data(), .ldy = ldy, .m = m, .n = n});
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < ldy; ++j) {
      const float want = j < n ? y0[i * ldy + j] + x[i * ldx + j] : y0[i * ldy + j];
      ASSERT_EQ(y[i * ldy + j], want);
    }
  }
}

TEST(GatherRows, CopiesTheListedRowsInOrder) {
  const int64_t n = 19, ldx = 23, ldo = 21;
  const auto x = random_floats(static_cast<size_t>(7 * ldx), 12);
  const std::vector<int32_t> rows = {6, 0, 3, 3};
  std::vector<float> out(rows.size() * ldo, -1.0f);
  cpu_backend().gather_rows({.x = x.data(), .ldx = ldx, .rows = rows.data(), .out = out.data(),
                             .ldo = ldo, .m = static_cast<int64_t>(rows.size()), .n = n});
  for (size_t i = 0; i < rows.size(); ++i) {
    for (int64_t j = 0; j < ldo; ++j) {
      ASSERT_EQ(out[i * ldo + j], j < n ? x[rows[i] * ldx + j] : -1.0f);
    }
  }
}

TEST(Copy, PitchedRowsLandAtTheirPitch) {
  // 3 rows of 5 floats from a pitch of 8 floats into a pitch of 6.
  const auto src = random_floats(24, 13);
  std::vector<float> dst(18, -1.0f);
  cpu_backend().copy({.dst = dst.data(), .dst_pitch = 6 * 4, .src = src.data(),
                      .src_pitch = 8 * 4, .row_bytes = 5 * 4, .rows = 3,
                      .kind = CopyKind::kDeviceToHost});
  for (int r = 0; r < 3; ++r) {
    for (int j = 0; j < 6; ++j) ASSERT_EQ(dst[r * 6 + j], j < 5 ? src[r * 8 + j] : -1.0f);
  }
}

}  // namespace
}  // namespace strata::kernels
