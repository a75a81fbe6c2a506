// AVX2 primitives for the attention loops (contract in attention_row.h): 8 lanes over
// head_dim, masked tails, one fixed horizontal-sum order, and the polynomial exp.
#include <immintrin.h>

#include "kernels/cpu/attention_impl.h"
#include "kernels/cpu/decode_attention_impl.h"
#include "kernels/cpu/kv_rows.h"

namespace strata::kernels::cpu {
namespace {

using namespace detail;  // the kExp* constants

inline __m256i tail_mask(int rem) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(rem), lane);
}

// attention_row.h's exp on 8 lanes; each lane's result depends on that lane alone.
inline __m256 exp8(__m256 x) {
  const __m256 xc =
      _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(kExpMin)), _mm256_set1_ps(kExpMax));
  const __m256 magic = _mm256_set1_ps(kExpRoundMagic);
  const __m256 n =
      _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(xc, _mm256_set1_ps(kExpLog2e)), magic), magic);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kExpLn2Hi), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kExpLn2Lo), r);
  __m256 poly = _mm256_set1_ps(kExpC7);
  poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(kExpC6));
  poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(kExpC5));
  poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(kExpC4));
  poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(kExpC3));
  poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(kExpC2));
  poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(1.0f));
  poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(1.0f));
  const __m256i bits =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 y = _mm256_mul_ps(poly, _mm256_castsi256_ps(bits));
  const __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(kExpMin), _CMP_NGE_UQ);
  return _mm256_andnot_ps(under, y);
}

// Rows of a KV tile (kv_rows.h), eight channels at a time converted to fp32 in registers.
// AVX2 has no masked 8- or 16-bit loads: a tail of rem < 8 channels is converted one value
// at a time (the same exact conversions) into zero-padded lanes.
template <DType D>
struct Avx2Rows {
  KvTile t;
  __m256 load(int64_t j, int c) const {
    const int64_t i = j * t.head_dim + c;
    if constexpr (D == DType::kF32) {
      return _mm256_loadu_ps(reinterpret_cast<const float*>(t.values) + i);
    } else if constexpr (D == DType::kBF16) {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(
          reinterpret_cast<const uint16_t*>(t.values) + i));
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    } else if constexpr (D == DType::kF16) {
      return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(
          reinterpret_cast<const uint16_t*>(t.values) + i)));
    } else {
      const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(
          reinterpret_cast<const int8_t*>(t.values) + i));
      return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)),
                           _mm256_set1_ps(t.scales[j * t.groups + c / kKvScaleGroup]));
    }
  }
  // Channels [c, c + rem), rem in 1..8; the other lanes zero.
  __m256 load_tail(int64_t j, int c, int rem) const {
    const int64_t i = j * t.head_dim + c;
    if constexpr (D == DType::kF32) {
      return _mm256_maskload_ps(reinterpret_cast<const float*>(t.values) + i, tail_mask(rem));
    } else {
      alignas(32) float lanes[8] = {};
      for (int l = 0; l < rem; ++l) {
        if constexpr (D == DType::kI8) {
          lanes[l] = static_cast<float>(reinterpret_cast<const int8_t*>(t.values)[i + l]) *
                     t.scales[j * t.groups + c / kKvScaleGroup];
        } else {
          const uint16_t bits = reinterpret_cast<const uint16_t*>(t.values)[i + l];
          lanes[l] = D == DType::kBF16 ? bf16_to_f32(bits) : _cvtsh_ss(bits);
        }
      }
      return _mm256_load_ps(lanes);
    }
  }
};

struct Avx2 {
  template <DType D>
  using Rows = Avx2Rows<D>;

  // Eight positions at a time, each into its own 8-lane accumulator, then one transposing
  // reduction for all eight; every position meets the same tree (t_i = a_i + a_{i+4},
  // u_i = t_i + t_{i+2}, u_0 + u_1) whatever its slot (see attention_avx512.cpp).
  template <class R>
  static void scores(const float* q, const R& k, int n, int hd, float scale, float* s) {
    for (int j0 = 0; j0 < n; j0 += 8) {
      const int m = n - j0 < 8 ? n - j0 : 8;
      __m256 a[8];
      for (int j = 0; j < 8; ++j) a[j] = _mm256_setzero_ps();
      // Always 8 slots, so the accumulators live in registers; slots past n re-read
      // position j0 and their results are not stored.
      int64_t row[8];
      for (int j = 0; j < 8; ++j) row[j] = j0 + (j < m ? j : 0);
      int c = 0;
      for (; c + 8 <= hd; c += 8) {
        const __m256 qc = _mm256_loadu_ps(q + c);
        for (int j = 0; j < 8; ++j) a[j] = _mm256_fmadd_ps(qc, k.load(row[j], c), a[j]);
      }
      if (c < hd) {
        const __m256 qc = _mm256_maskload_ps(q + c, tail_mask(hd - c));
        for (int j = 0; j < 8; ++j) a[j] = _mm256_fmadd_ps(qc, k.load_tail(row[j], c, hd - c), a[j]);
      }
      __m256 b[4], cc[2];
      for (int i = 0; i < 4; ++i) {
        b[i] = _mm256_add_ps(_mm256_permute2f128_ps(a[i], a[i + 4], 0x20),
                             _mm256_permute2f128_ps(a[i], a[i + 4], 0x31));
      }
      for (int i = 0; i < 2; ++i) {
        const __m256d x = _mm256_castps_pd(b[i]), y = _mm256_castps_pd(b[i + 2]);
        cc[i] = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(x, y)),
                              _mm256_castpd_ps(_mm256_unpackhi_pd(x, y)));
      }
      const __m256 e = _mm256_add_ps(_mm256_shuffle_ps(cc[0], cc[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                     _mm256_shuffle_ps(cc[0], cc[1], _MM_SHUFFLE(3, 1, 3, 1)));
      // e holds positions 0 2 1 3 4 6 5 7; this permutation is its own inverse.
      const __m256i order = _mm256_setr_epi32(0, 2, 1, 3, 4, 6, 5, 7);
      const __m256 r = _mm256_mul_ps(_mm256_permutevar8x32_ps(e, order), _mm256_set1_ps(scale));
      _mm256_maskstore_ps(s + j0, tail_mask(m), r);
    }
  }
  static void store_scaled(float* out, const float* acc, float s, int n) {
    const __m256 a = _mm256_set1_ps(s);
    int i = 0;
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(acc + i), a));
    if (i < n) {
      const __m256i m = tail_mask(n - i);
      _mm256_maskstore_ps(out + i, m, _mm256_mul_ps(_mm256_maskload_ps(acc + i, m), a));
    }
  }
  static void scale(float* acc, float alpha, int n) { store_scaled(acc, acc, alpha, n); }
  // Column chunks outer, positions inner (see attention_avx512.cpp): per element the fused
  // multiply-adds still run in position order; four chunks give four chains.
  template <class R>
  static void accumulate(float* acc, const float* e, const R& v, int n, int hd) {
    int c = 0;
    for (; c + 32 <= hd; c += 32) {
      __m256 a0 = _mm256_loadu_ps(acc + c), a1 = _mm256_loadu_ps(acc + c + 8);
      __m256 a2 = _mm256_loadu_ps(acc + c + 16), a3 = _mm256_loadu_ps(acc + c + 24);
      for (int j = 0; j < n; ++j) {
        const __m256 ej = _mm256_set1_ps(e[j]);
        a0 = _mm256_fmadd_ps(ej, v.load(j, c), a0);
        a1 = _mm256_fmadd_ps(ej, v.load(j, c + 8), a1);
        a2 = _mm256_fmadd_ps(ej, v.load(j, c + 16), a2);
        a3 = _mm256_fmadd_ps(ej, v.load(j, c + 24), a3);
      }
      _mm256_storeu_ps(acc + c, a0);
      _mm256_storeu_ps(acc + c + 8, a1);
      _mm256_storeu_ps(acc + c + 16, a2);
      _mm256_storeu_ps(acc + c + 24, a3);
    }
    for (; c < hd; c += 8) {
      const int rem = hd - c >= 8 ? 8 : hd - c;
      const __m256i m = tail_mask(rem);
      __m256 a = _mm256_maskload_ps(acc + c, m);
      for (int j = 0; j < n; ++j) {
        const __m256 vj = rem == 8 ? v.load(j, c) : v.load_tail(j, c, rem);
        a = _mm256_fmadd_ps(_mm256_set1_ps(e[j]), vj, a);
      }
      _mm256_maskstore_ps(acc + c, m, a);
    }
  }
  static float max(const float* s, int n) {
    __m256 m = _mm256_set1_ps(-__builtin_inff());
    for (int i = 0; i < n; i += 8) {
      const __m256i tm = tail_mask(n - i < 8 ? n - i : 8);
      m = _mm256_max_ps(
          m, _mm256_blendv_ps(m, _mm256_maskload_ps(s + i, tm), _mm256_castsi256_ps(tm)));
    }
    __m128 x = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    x = _mm_max_ps(x, _mm_movehl_ps(x, x));
    return _mm_cvtss_f32(_mm_max_ss(x, _mm_movehdup_ps(x)));  // exact in any order
  }
  // Lanes past n hold 0 (adding +0 to a weight is exact); 8-lane chunks add lane-wise, then
  // one fixed tree: (i, i+4), (i, i+2), (0, 1).
  static float exp_sum(float* s, int n, float shift) {
    const __m256 sh = _mm256_set1_ps(shift);
    __m256 sum = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) {
      const __m256i m = tail_mask(n - i < 8 ? n - i : 8);
      const __m256 e = _mm256_and_ps(_mm256_castsi256_ps(m),
                                     exp8(_mm256_sub_ps(_mm256_maskload_ps(s + i, m), sh)));
      _mm256_maskstore_ps(s + i, m, e);
      sum = _mm256_add_ps(sum, e);
    }
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
  }
  static float exp1(float x) { return _mm256_cvtss_f32(exp8(_mm256_set1_ps(x))); }
};

}  // namespace

void paged_attention_avx2(const PagedAttentionParams& p, int threads) {
  detail::attend_all<Avx2>(p, threads);
}

void decode_attention_avx2(const PagedAttentionParams& p, int threads) {
  detail::decode_all<Avx2>(p, threads);
}

void attention_exp_avx2(float* s, int n) { Avx2::exp_sum(s, n, 0.0f); }

}  // namespace strata::kernels::cpu
