// The per-row arithmetic of CPU attention, shared by the prefill kernel (attention_impl.h)
// and the decode kernel (decode_attention_impl.h). A (query, head) row's output is the
// result of one fixed sequence of operations over its KV blocks, in table order:
//
//   s[j]  = dot(q, k_j) · scale                       j < n, one dot order (V::scores)
//   m'    = max(m, max_j s[j])                         exact, order-free
//   α     = exp(m − m'),  e[j] = exp(s[j] − m')        the polynomial below, lane-wise
//   l'    = l·α + Σ_j e[j]                             Σ in one fixed tree (V::exp_sum)
//   acc   = acc·α, then acc += e[j]·v_j for j = 0, 1, …  one fused multiply-add per element
//   out   = acc · (1 / l)                              after the last block
//
// Both kernels run every (row, block) step through the functions below, so a token's output has
// the same bits whether it ran as a decode token or inside a prefill chunk (the engine's
// batch-invariance guarantee: recomputation after preemption goes through prefill). Nothing
// here depends on which other rows, items or threads exist.
//
// V (one type per ISA file, see isa.h) provides, each in one fixed order, over rows R of a
// KV tile (V::Rows<D>, kv_rows.h: fp32 values whatever the cache dtype):
//   template <class R> void scores(const float* q, const R& k, int n, int hd, float scale, float* s);
//                     // s[j] = dot(q, k row j) · scale; a position's value must not
//                     // depend on n or on its index j
//   void scale(float* acc, float alpha, int n);             // acc ·= alpha
//   template <class R> void accumulate(float* acc, const float* e, const R& v, int n, int hd);
//                     // for j < n in order: acc += e[j] · v row j (fused, per element)
//   float max(const float* s, int n);
//   float exp_sum(float* s, int n, float shift);  // s[j] = exp(s[j] − shift); returns their
//                     // sum in a fixed order that may depend on n but not on anything else
//   float exp1(float x);                           // same bits as one lane of exp_sum
//   void store_scaled(float* out, const float* acc, float s, int n);  // out = acc · s
#pragma once

#include <cstdint>

namespace strata::kernels::cpu::detail {

// exp(x) = 2ⁿ · exp(r), n = round(x · log2 e), r = x − n·ln2 (Cody–Waite: ln2_hi has 9
// significant bits so n·ln2_hi is exact), |r| ≤ ln2/2, exp(r) by its degree-7 Taylor
// polynomial (truncation < 6e-9 relative, under 0.1 ulp); total error ≈ 1 ulp. Rounding uses
// the 1.5·2²³ trick so the scalar path rounds exactly as the vector ones. x below
// kExpMin (including −inf, the initial running max) gives 0, not a subnormal: no weight in
// a softmax is that small and relevant. x above kExpMax (never in a softmax, where x ≤ 0)
// is clamped there.
inline constexpr float kExpMin = -87.33654f;  // ≈ ln(FLT_MIN): 2ⁿ stays a normal number
inline constexpr float kExpMax = 88.376f;     // n ≤ 127
inline constexpr float kExpLog2e = 1.44269504088896341f;
inline constexpr float kExpRoundMagic = 12582912.0f;  // 1.5 · 2²³
inline constexpr float kExpLn2Hi = 0.693359375f;
inline constexpr float kExpLn2Lo = -2.12194440e-4f;
inline constexpr float kExpC2 = 1.0f / 2, kExpC3 = 1.0f / 6, kExpC4 = 1.0f / 24,
                       kExpC5 = 1.0f / 120, kExpC6 = 1.0f / 720, kExpC7 = 1.0f / 5040;

// The running softmax update for one block: new max, rescale by α, weights and their sum.
// noinline: the files compiled with FMA contract l·α + Σ into one fused op; one out-of-line
// copy per ISA makes that choice once, not once per inlined call site.
template <class V>
__attribute__((noinline)) void softmax_block(float* s, int n, float* row_max, float* row_sum,
                                             float* acc, int hd) {
  const float block_max = V::max(s, n);
  const float new_max = block_max > *row_max ? block_max : *row_max;
  const float alpha = V::exp1(*row_max - new_max);
  const float block_sum = V::exp_sum(s, n, new_max);
  *row_sum = *row_sum * alpha + block_sum;
  *row_max = new_max;
  V::scale(acc, alpha, hd);
}

// One (row, block) step: the row's first n positions of a KV block (k, v: rows of a tile).
// s is scratch of at least n floats. The decode kernel runs the same three calls, phased
// across the rows of its group.
template <class V, class R>
inline void attend_row_block(const float* q, const R& k, const R& v, int n, int hd,
                             float scale, float* s, float* row_max, float* row_sum, float* acc) {
  V::scores(q, k, n, hd, scale, s);
  softmax_block<V>(s, n, row_max, row_sum, acc, hd);
  V::accumulate(acc, s, v, n, hd);
}

}  // namespace strata::kernels::cpu::detail
