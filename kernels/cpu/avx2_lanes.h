// Lane helpers the AVX2 GEMMs share (gemm_avx2.cpp, gemm_w4a16_avx2.cpp), so the dense and
// the int4 paths reduce and round in exactly the same way. Include only from *_avx2.cpp
// files; `static` per kernels/cpu/isa.h's note on linkage.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace strata::kernels::cpu::avx2 {

static inline int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }
static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// Fixed order: lanes (i, i+4), (i, i+2), (i, i+1).
static inline float hsum(__m256 v) {
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  const __m128 s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
  return _mm_cvtss_f32(s1);
}

// Round-to-nearest-even to bf16 and back, in fp32 lanes (NaN is not preserved: activations
// are finite).
static inline __m256 round_bf16(__m256 v) {
  const __m256i u = _mm256_castps_si256(v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb));
  return _mm256_castsi256_ps(_mm256_and_si256(r, _mm256_set1_epi32(int(0xffff0000u))));
}

}  // namespace strata::kernels::cpu::avx2
