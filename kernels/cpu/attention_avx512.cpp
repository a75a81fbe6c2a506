// AVX-512 primitives for the shared attention loop (attention_impl.h): 16 lanes over
// head_dim, masked tail, one fixed horizontal-sum order.
// GCC 12 reports the deliberately undefined lanes inside its own AVX-512 intrinsic headers
// (_mm512_undefined_*) as uninitialized; the warning concerns the header, not this file.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels/cpu/attention_impl.h"

namespace strata::kernels::cpu {
namespace {

inline __mmask16 tail_mask(int rem) { return _cvtu32_mask16((1u << rem) - 1u); }

struct Avx512 {
  static float dot(const float* a, const float* b, int n) {
    __m512 acc = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
    if (i < n) {
      const __mmask16 m = tail_mask(n - i);
      acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc);
    }
    const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(acc),
                                    _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1)));
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
  }
  static void scale(float* acc, float alpha, int n) {
    const __m512 a = _mm512_set1_ps(alpha);
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(acc + i, _mm512_mul_ps(_mm512_loadu_ps(acc + i), a));
    if (i < n) {
      const __mmask16 m = tail_mask(n - i);
      _mm512_mask_storeu_ps(acc + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, acc + i), a));
    }
  }
  static void axpy(float* acc, float e, const float* v, int n) {
    const __m512 ev = _mm512_set1_ps(e);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
      _mm512_storeu_ps(acc + i, _mm512_fmadd_ps(ev, _mm512_loadu_ps(v + i), _mm512_loadu_ps(acc + i)));
    }
    if (i < n) {
      const __mmask16 m = tail_mask(n - i);
      const __m512 r = _mm512_fmadd_ps(ev, _mm512_maskz_loadu_ps(m, v + i), _mm512_maskz_loadu_ps(m, acc + i));
      _mm512_mask_storeu_ps(acc + i, m, r);
    }
  }
  static void store_scaled(float* out, const float* acc, float s, int n) { scale_to(out, acc, s, n); }
  static void scale_to(float* out, const float* acc, float s, int n) {
    const __m512 a = _mm512_set1_ps(s);
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_loadu_ps(acc + i), a));
    if (i < n) {
      const __mmask16 m = tail_mask(n - i);
      _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, acc + i), a));
    }
  }
};

}  // namespace

void paged_attention_avx512(const PagedAttentionParams& p, const AttentionWork* items,
                            int64_t num_items, float* workspace, int64_t ws_floats,
                            int threads) {
  detail::attend_all<Avx512>(p, items, num_items, workspace, ws_floats, threads);
}

}  // namespace strata::kernels::cpu
