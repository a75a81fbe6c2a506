// AVX-512 primitives for the attention loops (contract in attention_row.h): 16 lanes over
// head_dim, masked tails, one fixed horizontal-sum order, and the polynomial exp.
// GCC 12 reports the deliberately undefined lanes inside its own AVX-512 intrinsic headers
// (_mm512_undefined_*) as uninitialized; the warning concerns the header, not this file.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels/cpu/attention_impl.h"
#include "kernels/cpu/decode_attention_impl.h"
#include "kernels/cpu/kv_rows.h"

namespace strata::kernels::cpu {
namespace {

using namespace detail;  // the kExp* constants, KvTile

// rem in 0..16.
inline __mmask16 tail_mask(int rem) { return _cvtu32_mask16((1u << rem) - 1u); }

// attention_row.h's exp on 16 lanes; each lane's result depends on that lane alone.
inline __m512 exp16(__m512 x) {
  const __m512 xc =
      _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(kExpMin)), _mm512_set1_ps(kExpMax));
  const __m512 magic = _mm512_set1_ps(kExpRoundMagic);
  const __m512 n =
      _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(xc, _mm512_set1_ps(kExpLog2e)), magic), magic);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kExpLn2Hi), xc);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kExpLn2Lo), r);
  __m512 poly = _mm512_set1_ps(kExpC7);
  poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(kExpC6));
  poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(kExpC5));
  poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(kExpC4));
  poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(kExpC3));
  poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(kExpC2));
  poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(1.0f));
  poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(1.0f));
  const __m512i bits =
      _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  const __m512 y = _mm512_mul_ps(poly, _mm512_castsi512_ps(bits));
  const __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(kExpMin), _CMP_NGE_UQ);
  return _mm512_mask_blend_ps(under, y, _mm512_setzero_ps());
}

// Rows of a KV tile (kv_rows.h), sixteen channels at a time converted to fp32 in registers;
// lanes outside `m` are zero, as a masked fp32 load gives.
template <DType D>
struct Avx512Rows {
  KvTile t;
  __m512 load(int64_t j, int c, __mmask16 m = 0xffff) const {
    const int64_t i = j * t.head_dim + c;
    if constexpr (D == DType::kF32) {
      return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(t.values) + i);
    } else if constexpr (D == DType::kBF16) {
      const __m256i h = _mm256_maskz_loadu_epi16(m, reinterpret_cast<const uint16_t*>(t.values) + i);
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    } else if constexpr (D == DType::kF16) {
      return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, reinterpret_cast<const uint16_t*>(t.values) + i));
    } else {
      const __m128i q = _mm_maskz_loadu_epi8(m, reinterpret_cast<const int8_t*>(t.values) + i);
      return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)),
                           _mm512_set1_ps(t.scales[j * t.groups + c / kKvScaleGroup]));
    }
  }
};

struct Avx512 {
  template <DType D>
  using Rows = Avx512Rows<D>;

  // Sixteen positions at a time: each position's products go into its own 16-lane
  // accumulator (q chunks loaded once for all sixteen), then one transposing reduction
  // sums all sixteen accumulators at once. Every position's lanes meet in the same tree,
  // t_i = a_i + a_{i+8}, u_i = t_i + t_{i+4}, w_i = u_i + u_{i+2}, w_0 + w_1, whatever its
  // slot and however many positions the call has, so its score has one value.
  template <class R>
  static void scores(const float* q, const R& k, int n, int hd, float scale, float* s) {
    for (int j0 = 0; j0 < n; j0 += 16) {
      const int m = n - j0 < 16 ? n - j0 : 16;
      __m512 a[16];
      for (int j = 0; j < 16; ++j) a[j] = _mm512_setzero_ps();
      // Always 16 slots, so the accumulators live in registers; slots past n re-read
      // position j0 and their results are not stored.
      int64_t row[16];
      for (int j = 0; j < 16; ++j) row[j] = j0 + (j < m ? j : 0);
      int c = 0;
      for (; c + 16 <= hd; c += 16) {
        const __m512 qc = _mm512_loadu_ps(q + c);
        for (int j = 0; j < 16; ++j) a[j] = _mm512_fmadd_ps(qc, k.load(row[j], c), a[j]);
      }
      if (c < hd) {
        const __mmask16 tm = tail_mask(hd - c);
        const __m512 qc = _mm512_maskz_loadu_ps(tm, q + c);
        for (int j = 0; j < 16; ++j) a[j] = _mm512_fmadd_ps(qc, k.load(row[j], c, tm), a[j]);
      }
      __m512 b[8], cc[4], d[2];
      for (int i = 0; i < 8; ++i) {
        b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[i], a[i + 8], 0x44),
                             _mm512_shuffle_f32x4(a[i], a[i + 8], 0xEE));
      }
      for (int i = 0; i < 4; ++i) {
        cc[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[i], b[i + 4], 0x88),
                              _mm512_shuffle_f32x4(b[i], b[i + 4], 0xDD));
      }
      for (int i = 0; i < 2; ++i) {
        const __m512d x = _mm512_castps_pd(cc[i]), y = _mm512_castps_pd(cc[i + 2]);
        d[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
      }
      const __m512 e = _mm512_add_ps(_mm512_shuffle_ps(d[0], d[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                     _mm512_shuffle_ps(d[0], d[1], _MM_SHUFFLE(3, 1, 3, 1)));
      // e holds positions 0 2 1 3 8 10 9 11 4 6 5 7 12 14 13 15; this permutation is its
      // own inverse.
      const __m512i order = _mm512_setr_epi32(0, 2, 1, 3, 8, 10, 9, 11, 4, 6, 5, 7, 12, 14, 13, 15);
      const __m512 r = _mm512_mul_ps(_mm512_permutexvar_ps(order, e), _mm512_set1_ps(scale));
      _mm512_mask_storeu_ps(s + j0, tail_mask(m), r);
    }
  }
  static void scale(float* acc, float alpha, int n) { store_scaled(acc, acc, alpha, n); }
  static void store_scaled(float* out, const float* acc, float s, int n) {
    const __m512 a = _mm512_set1_ps(s);
    int i = 0;
    for (; i + 16 <= n; i += 16)
      _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_loadu_ps(acc + i), a));
    if (i < n) {
      const __mmask16 m = tail_mask(n - i);
      _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, acc + i), a));
    }
  }
  // Column chunks outer, positions inner: acc stays in registers across the block, and each
  // element still sees its fused multiply-adds in position order. Four chunks at a time
  // give four independent dependency chains.
  template <class R>
  static void accumulate(float* acc, const float* e, const R& v, int n, int hd) {
    int c = 0;
    for (; c + 64 <= hd; c += 64) {
      __m512 a0 = _mm512_loadu_ps(acc + c), a1 = _mm512_loadu_ps(acc + c + 16);
      __m512 a2 = _mm512_loadu_ps(acc + c + 32), a3 = _mm512_loadu_ps(acc + c + 48);
      for (int j = 0; j < n; ++j) {
        const __m512 ej = _mm512_set1_ps(e[j]);
        a0 = _mm512_fmadd_ps(ej, v.load(j, c), a0);
        a1 = _mm512_fmadd_ps(ej, v.load(j, c + 16), a1);
        a2 = _mm512_fmadd_ps(ej, v.load(j, c + 32), a2);
        a3 = _mm512_fmadd_ps(ej, v.load(j, c + 48), a3);
      }
      _mm512_storeu_ps(acc + c, a0);
      _mm512_storeu_ps(acc + c + 16, a1);
      _mm512_storeu_ps(acc + c + 32, a2);
      _mm512_storeu_ps(acc + c + 48, a3);
    }
    for (; c < hd; c += 16) {
      const __mmask16 m = hd - c >= 16 ? _cvtu32_mask16(0xffffu) : tail_mask(hd - c);
      __m512 a = _mm512_maskz_loadu_ps(m, acc + c);
      for (int j = 0; j < n; ++j) a = _mm512_fmadd_ps(_mm512_set1_ps(e[j]), v.load(j, c, m), a);
      _mm512_mask_storeu_ps(acc + c, m, a);
    }
  }
  static float max(const float* s, int n) {
    __m512 m = _mm512_set1_ps(-__builtin_inff());
    for (int i = 0; i < n; i += 16) {
      m = _mm512_max_ps(m, _mm512_mask_loadu_ps(m, tail_mask(n - i < 16 ? n - i : 16), s + i));
    }
    return _mm512_reduce_max_ps(m);  // exact in any order
  }
  // Lanes past n hold 0 (adding +0 to a weight is exact); 16-lane chunks add lane-wise,
  // then one fixed tree: (i, i+8), (i, i+4), (i, i+2), (0, 1).
  static float exp_sum(float* s, int n, float shift) {
    const __m512 sh = _mm512_set1_ps(shift);
    __m512 sum = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
      const __mmask16 m = tail_mask(n - i < 16 ? n - i : 16);
      const __m512 e =
          _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + i), sh)));
      _mm512_mask_storeu_ps(s + i, m, e);
      sum = _mm512_add_ps(sum, e);
    }
    const __m256 s8 =
        _mm256_add_ps(_mm512_castps512_ps256(sum),
                      _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(sum), 1)));
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
  }
  static float exp1(float x) { return _mm512_cvtss_f32(exp16(_mm512_set1_ps(x))); }
};

}  // namespace

void paged_attention_avx512(const PagedAttentionParams& p, int threads) {
  detail::attend_all<Avx512>(p, threads);
}

void decode_attention_avx512(const PagedAttentionParams& p, int threads) {
  detail::decode_all<Avx512>(p, threads);
}

void attention_exp_avx512(float* s, int n) { Avx512::exp_sum(s, n, 0.0f); }

}  // namespace strata::kernels::cpu
