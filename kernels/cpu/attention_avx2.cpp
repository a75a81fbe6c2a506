// AVX2 primitives for the shared attention loop (attention_impl.h): 8 lanes over head_dim,
// masked tail, one fixed horizontal-sum order.
#include <immintrin.h>

#include "kernels/cpu/attention_impl.h"

namespace strata::kernels::cpu {
namespace {

inline __m256i tail_mask(int rem) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(rem), lane);
}

struct Avx2 {
  static float dot(const float* a, const float* b, int n) {
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    if (i < n) {
      const __m256i m = tail_mask(n - i);
      acc = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), acc);
    }
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
  }
  static void scale_to(float* out, const float* acc, float s, int n) {
    const __m256 a = _mm256_set1_ps(s);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(acc + i), a));
    if (i < n) {
      const __m256i m = tail_mask(n - i);
      _mm256_maskstore_ps(out + i, m, _mm256_mul_ps(_mm256_maskload_ps(acc + i, m), a));
    }
  }
  static void scale(float* acc, float alpha, int n) { scale_to(acc, acc, alpha, n); }
  static void store_scaled(float* out, const float* acc, float s, int n) { scale_to(out, acc, s, n); }
  static void axpy(float* acc, float e, const float* v, int n) {
    const __m256 ev = _mm256_set1_ps(e);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
      _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(ev, _mm256_loadu_ps(v + i), _mm256_loadu_ps(acc + i)));
    }
    if (i < n) {
      const __m256i m = tail_mask(n - i);
      const __m256 r = _mm256_fmadd_ps(ev, _mm256_maskload_ps(v + i, m), _mm256_maskload_ps(acc + i, m));
      _mm256_maskstore_ps(acc + i, m, r);
    }
  }
};

}  // namespace

void paged_attention_avx2(const PagedAttentionParams& p, const AttentionWork* items,
                          int64_t num_items, float* workspace, int64_t ws_floats, int threads) {
  detail::attend_all<Avx2>(p, items, num_items, workspace, ws_floats, threads);
}

}  // namespace strata::kernels::cpu
