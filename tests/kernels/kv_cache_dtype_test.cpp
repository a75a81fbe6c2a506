// KV caches in bf16, fp16 and group-quantized int8 (kernels/kv_cache_format.h). The write
// kernel against independent references (the compiler's _Float16 conversion, the nearest
// bf16 found in double, int8 quantization redone in double); the attention kernels, on
// every CPU path, against a double-precision reference over the decoded values, bit for bit
// against themselves run on an fp32 cache holding those values, and decode against prefill.
#include <gtest/gtest.h>
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "kernels/kv_cache_format.h"
#include "kernels/ops.h"
#include "tests/kernels/attention_problem.h"
#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels {
namespace {

using testing::for_each_isa;
using testing::Problem;
using testing::random_floats;
using testing::SeqSpec;

// An IEEE half reference nobody here wrote: the compiler's _Float16, or, under clang before
// 15 (no _Float16 on x86, and no runtime for its __fp16), the CPU's own F16C conversions.
#if defined(__clang__) && __clang_major__ < 15
__attribute__((target("f16c"))) float half_bits_to_float(uint16_t bits) {
  return _cvtsh_ss(bits);
}

__attribute__((target("f16c"))) uint16_t float_to_half_bits(float x) {
  return static_cast<uint16_t>(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT));
}
#else
float half_bits_to_float(uint16_t bits) {
  _Float16 h;
  std::memcpy(&h, &bits, sizeof h);
  return static_cast<float>(h);
}

uint16_t float_to_half_bits(float x) {
  const _Float16 h = static_cast<_Float16>(x);
  uint16_t bits;
  std::memcpy(&bits, &h, sizeof bits);
  return bits;
}
#endif

// The bf16 nearest to x (ties to the even pattern), chosen by distance in double.
uint16_t nearest_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  const uint32_t lo = u & 0xffff0000u, hi = lo + 0x10000u;
  float flo, fhi;
  std::memcpy(&flo, &lo, sizeof flo);
  std::memcpy(&fhi, &hi, sizeof fhi);
  const double dlo = std::fabs(double{x} - flo), dhi = std::fabs(double{fhi} - x);
  if (dlo != dhi) return static_cast<uint16_t>((dlo < dhi ? lo : hi) >> 16);
  return static_cast<uint16_t>(((lo >> 16) & 1u) == 0 ? lo >> 16 : hi >> 16);
}

// One cache's bytes and the layout arithmetic the tests read it with.
struct TypedCache {
  DType dtype;
  int num_kv_heads, head_dim, block_size;
  std::vector<unsigned char> bytes;

  TypedCache(DType d, int nkv, int hd, int bs, int64_t num_blocks)
      : dtype(d), num_kv_heads(nkv), head_dim(hd), block_size(bs),
        bytes(static_cast<size_t>(num_blocks * nkv * kv_tile_bytes(d, bs, hd)), 0xAB) {}

  const unsigned char* tile(int64_t block, int head) const {
    return bytes.data() + (block * num_kv_heads + head) * kv_tile_bytes(dtype, block_size, head_dim);
  }
  uint16_t scale_bits(int64_t block, int head, int row, int group) const {
    uint16_t bits;
    std::memcpy(&bits, tile(block, head) + kv_tile_value_bytes(dtype, block_size, head_dim) +
                           2 * (row * kv_scale_groups(head_dim) + group), 2);
    return bits;
  }
  int8_t q(int64_t block, int head, int row, int c) const {
    return static_cast<int8_t>(tile(block, head)[row * head_dim + c]);
  }
  uint16_t bits16(int64_t block, int head, int row, int c) const {
    uint16_t bits;
    std::memcpy(&bits, tile(block, head) + 2 * (row * head_dim + c), 2);
    return bits;
  }
  // The stored value, decoded without the kernels' code.
  float decoded(int64_t block, int head, int row, int c) const {
    switch (dtype) {
      case DType::kBF16: {
        const uint32_t u = static_cast<uint32_t>(bits16(block, head, row, c)) << 16;
        float f;
        std::memcpy(&f, &u, sizeof f);
        return f;
      }
      case DType::kF16:
        return half_bits_to_float(bits16(block, head, row, c));
      case DType::kI8:
        return static_cast<float>(q(block, head, row, c)) *
               half_bits_to_float(scale_bits(block, head, row, c / kKvScaleGroup));
      default: {
        float f;
        std::memcpy(&f, tile(block, head) + 4 * (row * head_dim + c), 4);
        return f;
      }
    }
  }
};

// Writes tokens [t, nkv, hd] to their slots (-1: padding) through the CPU backend.
void write(TypedCache& cache, const std::vector<float>& k, const std::vector<float>& v,
           const std::vector<int32_t>& slots) {
  const int64_t row = int64_t{cache.num_kv_heads} * cache.head_dim;
  cpu_backend().kv_cache_write({.k = k.data(), .v = v.data(), .k_stride = row, .v_stride = row,
                                .k_cache = cache.bytes.data(), .v_cache = cache.bytes.data(),
                                .cache_dtype = cache.dtype, .slot_mapping = slots.data(),
                                .t = static_cast<int64_t>(slots.size()),
                                .num_kv_heads = cache.num_kv_heads, .head_dim = cache.head_dim,
                                .block_size = cache.block_size});
}

// Rows of very different magnitudes, an all-zero row and a row whose first group is zero.
std::vector<float> varied_rows(int tokens, int nkv, int hd, uint32_t seed) {
  std::vector<float> x = random_floats(static_cast<size_t>(tokens) * nkv * hd, seed);
  const float magnitudes[] = {1e-3f, 0.5f, 3.0f, 100.0f, 7e3f};
  for (int t = 0; t < tokens; ++t) {
    for (int i = 0; i < nkv * hd; ++i) x[static_cast<size_t>(t * nkv * hd + i)] *= magnitudes[t % 5];
  }
  std::fill_n(x.begin(), nkv * hd, 0.0f);
  std::fill_n(x.begin() + nkv * hd, std::min(hd, kKvScaleGroup), 0.0f);
  return x;
}

TEST(KvCacheWrite, Int8MatchesAQuantizationRedoneInDouble) {
  for (int hd : {64, 128, 40, 72, 8}) {
    SCOPED_TRACE(::testing::Message() << "head_dim " << hd);
    const int nkv = 2, bs = 16, tokens = 23;
    TypedCache cache(DType::kI8, nkv, hd, bs, 4);
    const std::vector<float> x = varied_rows(tokens, nkv, hd, 3);
    std::vector<int32_t> slots(tokens);
    std::iota(slots.begin(), slots.end(), 5);  // slots 5..27: blocks 0 and 1
    slots[7] = -1;                              // padding: nothing written for it
    write(cache, x, x, slots);
    int near_ties = 0;
    for (int t = 0; t < tokens; ++t) {
      if (slots[t] < 0) continue;
      const int64_t block = slots[t] / bs;
      const int row = slots[t] % bs;
      for (int h = 0; h < nkv; ++h) {
        const float* xr = x.data() + (int64_t{t} * nkv + h) * hd;
        for (int g = 0; g < kv_scale_groups(hd); ++g) {
          const int c0 = g * kKvScaleGroup, c1 = std::min(hd, c0 + kKvScaleGroup);
          double absmax = 0;
          for (int c = c0; c < c1; ++c) absmax = std::max(absmax, std::fabs(double{xr[c]}));
          // The rule: absmax / 127 in fp32, rounded to fp16.
          const uint16_t want_scale = float_to_half_bits(static_cast<float>(absmax) / 127.0f);
          ASSERT_EQ(cache.scale_bits(block, h, row, g), want_scale) << "token " << t << " group " << g;
          const double scale = half_bits_to_float(want_scale);
          for (int c = c0; c < c1; ++c) {
            const double ratio = scale > 0 ? xr[c] / scale : 0.0;
            const double want = std::clamp(std::nearbyint(ratio), -127.0, 127.0);
            const int got = cache.q(block, h, row, c);
            if (got != want) {
              // Only where fp32 division and double disagree about a half-way quotient.
              ASSERT_LT(std::fabs(std::fabs(ratio - std::trunc(ratio)) - 0.5), 1e-5)
                  << "token " << t << " channel " << c << ": " << got << " vs " << want;
              ++near_ties;
            }
            // Within half a step, unless fp16 rounded the scale down past absmax / 127.5
            // (subnormal scales of tiny rows): then the value saturates.
            if (std::fabs(ratio) <= 127.5) {
              ASSERT_LE(std::fabs(xr[c] - got * scale), 0.5 * scale * (1 + 1e-6));
            } else {
              ASSERT_EQ(std::abs(got), 127);
            }
          }
        }
      }
    }
    EXPECT_LE(near_ties, 2);
    // Slot 12 (token 7) was padding: its bytes in block 0 are untouched.
    for (int c = 0; c < hd; ++c) EXPECT_EQ(cache.q(0, 0, 12, c), static_cast<int8_t>(0xAB));
  }
}

TEST(KvCacheWrite, Bf16AndFp16RoundToNearestEven) {
  for (DType dtype : {DType::kBF16, DType::kF16, DType::kF32}) {
    for (int hd : {64, 40}) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " head_dim " << hd);
      const int nkv = 3, bs = 8, tokens = 12;
      TypedCache cache(dtype, nkv, hd, bs, 3);
      std::vector<float> k = varied_rows(tokens, nkv, hd, 7);
      const std::vector<float> v = varied_rows(tokens, nkv, hd, 8);
      std::vector<int32_t> slots(tokens);
      std::iota(slots.rbegin(), slots.rend(), 2);  // reversed: slots 13..2
      TypedCache v_cache = cache;
      const int64_t row_elems = int64_t{nkv} * hd;
      cpu_backend().kv_cache_write({.k = k.data(), .v = v.data(), .k_stride = row_elems,
                                    .v_stride = row_elems, .k_cache = cache.bytes.data(),
                                    .v_cache = v_cache.bytes.data(), .cache_dtype = dtype,
                                    .slot_mapping = slots.data(), .t = tokens,
                                    .num_kv_heads = nkv, .head_dim = hd, .block_size = bs});
      for (int t = 0; t < tokens; ++t) {
        for (int h = 0; h < nkv; ++h) {
          for (int c = 0; c < hd; ++c) {
            const size_t i = static_cast<size_t>((int64_t{t} * nkv + h) * hd + c);
            const int64_t block = slots[t] / bs;
            const int row = slots[t] % bs;
            for (const auto& [cache_ref, x] : {std::pair{&cache, k[i]}, std::pair{&v_cache, v[i]}}) {
              if (dtype == DType::kF32) {
                ASSERT_EQ(cache_ref->decoded(block, h, row, c), x);
              } else {
                const uint16_t want = dtype == DType::kBF16 ? nearest_bf16(x) : float_to_half_bits(x);
                ASSERT_EQ(cache_ref->bits16(block, h, row, c), want) << "token " << t << " dim " << c;
              }
            }
          }
        }
      }
    }
  }
}

// The problem's caches stored in `dtype` through the write kernel; its fp32 caches then
// hold the decoded values, which the reference and the fp32 twin run read.
void store_as(Problem& pr, DType dtype) {
  const int nkv = pr.num_kv_heads, hd = pr.head_dim, bs = pr.block_size;
  const int64_t num_blocks = static_cast<int64_t>(pr.k_cache.size()) / (int64_t{nkv} * bs * hd);
  // Token rows in slot order: slot s holds cache position (s / bs, ·, s % bs).
  std::vector<float> k_rows(pr.k_cache.size()), v_rows(pr.v_cache.size());
  std::vector<int32_t> slots(static_cast<size_t>(num_blocks * bs));
  for (int64_t s = 0; s < num_blocks * bs; ++s) {
    slots[static_cast<size_t>(s)] = static_cast<int32_t>(s);
    for (int h = 0; h < nkv; ++h) {
      const int64_t from = (((s / bs) * nkv + h) * bs + s % bs) * hd, to = (s * nkv + h) * hd;
      std::copy_n(pr.k_cache.begin() + from, hd, k_rows.begin() + to);
      std::copy_n(pr.v_cache.begin() + from, hd, v_rows.begin() + to);
    }
  }
  TypedCache k(dtype, nkv, hd, bs, num_blocks), v(dtype, nkv, hd, bs, num_blocks);
  write(k, k_rows, k_rows, slots);
  write(v, v_rows, v_rows, slots);
  for (int64_t b = 0; b < num_blocks; ++b) {
    for (int h = 0; h < nkv; ++h) {
      for (int r = 0; r < bs; ++r) {
        for (int c = 0; c < hd; ++c) {
          const size_t at = static_cast<size_t>(((b * nkv + h) * bs + r) * hd + c);
          pr.k_cache[at] = k.decoded(b, h, r, c);
          pr.v_cache[at] = v.decoded(b, h, r, c);
        }
      }
    }
  }
  pr.cache_dtype = dtype;
  pr.typed_k = std::move(k.bytes);
  pr.typed_v = std::move(v.bytes);
}

std::vector<float> run_on_fp32_twin(Problem& pr, const std::vector<AttentionSequence>& seqs,
                                    int tokens, const float* q, bool decode) {
  const DType dtype = pr.cache_dtype;
  pr.cache_dtype = DType::kF32;
  std::vector<float> out = pr.run(seqs, tokens, q, decode);
  pr.cache_dtype = dtype;
  return out;
}

TEST(KvCacheDtypeAttention, BothKernelsReadEachDtypeExactlyAsItsDecodedValues) {
  const std::vector<SeqSpec> prefill_mix = {{1, 1}, {17, 1}, {300, 1}, {33, 33}, {150, 40}};
  const std::vector<SeqSpec> decode_mix = {{1, 1}, {17, 1}, {300, 1}, {64, 1}};
  struct Shape { int nq, nkv, hd, bs; };
  for (DType dtype : {DType::kBF16, DType::kF16, DType::kI8}) {
    for (Shape sh : {Shape{4, 4, 64, 16}, Shape{8, 2, 72, 16}, Shape{8, 4, 128, 32}}) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " heads " << sh.nq << "/"
                                        << sh.nkv << " head_dim " << sh.hd);
      for (bool decode : {false, true}) {
        Problem pr(sh.nq, sh.nkv, sh.hd, sh.bs, decode ? decode_mix : prefill_mix, 21);
        store_as(pr, dtype);
        for_each_isa([&](cpu::CpuIsa) {
          const std::vector<float> out = pr.run(pr.seqs, pr.num_tokens, pr.q.data(), decode);
          pr.check(out);
          const std::vector<float> twin =
              run_on_fp32_twin(pr, pr.seqs, pr.num_tokens, pr.q.data(), decode);
          ASSERT_EQ(0, std::memcmp(out.data(), twin.data(), out.size() * sizeof(float)))
              << (decode ? "decode" : "prefill") << " kernel: the typed cache reads differently "
              << "from an fp32 cache of its decoded values";
        });
      }
    }
  }
}

// Batch invariance with an int8 cache: a prefill chunk's rows equal the decode kernel's rows
// for the same queries and contexts, bit for bit.
TEST(KvCacheDtypeAttention, Int8DecodeRowsEqualPrefillRows) {
  std::vector<SeqSpec> chunks;
  for (int c = 1; c <= 80; ++c) chunks.push_back({c, std::min(c, 1 + c % 5)});
  Problem pr(8, 2, 64, 16, chunks, 31);
  store_as(pr, DType::kI8);
  const int64_t row = int64_t{pr.num_q_heads} * pr.head_dim;
  std::vector<float> last_q;
  std::vector<AttentionSequence> decode_seqs;
  for (size_t s = 0; s < pr.seqs.size(); ++s) {
    const AttentionSequence& c = pr.seqs[s];
    const int token = c.query_start + c.num_queries - 1;
    last_q.insert(last_q.end(), pr.q.begin() + token * row, pr.q.begin() + (token + 1) * row);
    decode_seqs.push_back({.query_start = static_cast<int32_t>(s), .num_queries = 1,
                           .context_len = c.context_len, .block_table = c.block_table});
  }
  for_each_isa([&](cpu::CpuIsa) {
    const auto prefill = pr.run(pr.seqs, pr.num_tokens, pr.q.data());
    const auto decode = pr.run(decode_seqs, static_cast<int>(decode_seqs.size()), last_q.data(), true);
    for (size_t s = 0; s < pr.seqs.size(); ++s) {
      const int token = pr.seqs[s].query_start + pr.seqs[s].num_queries - 1;
      ASSERT_EQ(0, std::memcmp(decode.data() + s * row, prefill.data() + token * row,
                               row * sizeof(float)))
          << "context " << pr.seqs[s].context_len;
    }
  });
}

TEST(KvCacheFormat, Int8TilesHoldAboutTwiceTheBf16Blocks) {
  for (int hd : {64, 128}) {
    const double ratio = static_cast<double>(kv_tile_bytes(DType::kBF16, 16, hd)) /
                         static_cast<double>(kv_tile_bytes(DType::kI8, 16, hd));
    EXPECT_GE(ratio, 1.9) << "head_dim " << hd;
    EXPECT_LT(ratio, 2.0) << "head_dim " << hd;
  }
  EXPECT_EQ(kv_tile_bytes(DType::kI8, 16, 72), 16 * 72 + 16 * 2 * 2);  // two groups, one partial
}

}  // namespace
}  // namespace strata::kernels
