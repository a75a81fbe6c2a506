// Paged attention dispatcher and the portable (scalar) primitives of both attention
// kernels (prefill here, decode in decode_attention.cpp).
#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cstring>

#include "common/check.h"
#include "kernels/attention_plan.h"
#include "kernels/cpu/attention_impl.h"
#include "kernels/cpu/decode_attention_impl.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/kv_rows.h"
#include "kernels/kv_cache_format.h"

namespace strata::kernels::cpu {
namespace {

// attention_row.h's exp in plain IEEE single precision (this file is compiled for baseline
// x86-64, without FMA, so nothing is fused).
float exp_poly(float x) {
  if (!(x >= detail::kExpMin)) return 0.0f;  // −inf, underflow (and NaN)
  if (x > detail::kExpMax) x = detail::kExpMax;
  const float n = (x * detail::kExpLog2e + detail::kExpRoundMagic) - detail::kExpRoundMagic;
  float r = x - n * detail::kExpLn2Hi;
  r = r - n * detail::kExpLn2Lo;
  float poly = detail::kExpC7;
  poly = poly * r + detail::kExpC6;
  poly = poly * r + detail::kExpC5;
  poly = poly * r + detail::kExpC4;
  poly = poly * r + detail::kExpC3;
  poly = poly * r + detail::kExpC2;
  poly = poly * r + 1.0f;
  poly = poly * r + 1.0f;
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
  float two_n;
  std::memcpy(&two_n, &bits, sizeof two_n);
  return poly * two_n;
}

// Rows of a KV tile (kv_rows.h), one value at a time.
template <DType D>
struct ScalarRows {
  detail::KvTile t;
  float at(int64_t j, int c) const {
    const int64_t i = j * t.head_dim + c;
    if constexpr (D == DType::kF32) {
      return reinterpret_cast<const float*>(t.values)[i];
    } else if constexpr (D == DType::kBF16) {
      return bf16_to_f32(reinterpret_cast<const uint16_t*>(t.values)[i]);
    } else if constexpr (D == DType::kF16) {
      return f16_to_f32(reinterpret_cast<const uint16_t*>(t.values)[i]);
    } else {
      return static_cast<float>(reinterpret_cast<const int8_t*>(t.values)[i]) *
             t.scales[j * t.groups + c / kKvScaleGroup];
    }
  }
};

struct Scalar {
  template <DType D>
  using Rows = ScalarRows<D>;
  template <class R>
  static void scores(const float* q, const R& k, int n, int hd, float scale, float* s) {
    for (int j = 0; j < n; ++j) {
      float acc = 0.0f;
      for (int i = 0; i < hd; ++i) acc += q[i] * k.at(j, i);
      s[j] = acc * scale;
    }
  }
  static void scale(float* acc, float alpha, int n) {
    for (int i = 0; i < n; ++i) acc[i] *= alpha;
  }
  template <class R>
  static void accumulate(float* acc, const float* e, const R& v, int n, int hd) {
    for (int j = 0; j < n; ++j) {
      for (int i = 0; i < hd; ++i) acc[i] += e[j] * v.at(j, i);
    }
  }
  static void store_scaled(float* out, const float* acc, float s, int n) {
    for (int i = 0; i < n; ++i) out[i] = acc[i] * s;
  }
  static float max(const float* s, int n) {
    float m = s[0];
    for (int j = 1; j < n; ++j) m = s[j] > m ? s[j] : m;
    return m;
  }
  static float exp_sum(float* s, int n, float shift) {
    float sum = 0.0f;
    for (int j = 0; j < n; ++j) sum += (s[j] = exp_poly(s[j] - shift));
    return sum;
  }
  static float exp1(float x) { return exp_poly(x); }
};

}  // namespace

void paged_attention_scalar(const PagedAttentionParams& p, int threads) {
  detail::attend_all<Scalar>(p, threads);
}

void decode_attention_scalar(const PagedAttentionParams& p, int threads) {
  detail::decode_all<Scalar>(p, threads);
}

void attention_exp(float* s, int n) {
  switch (cpu_isa()) {
    case CpuIsa::kAvx512:
      attention_exp_avx512(s, n);
      return;
    case CpuIsa::kAvx2:
      attention_exp_avx2(s, n);
      return;
    case CpuIsa::kScalar:
      Scalar::exp_sum(s, n, 0.0f);
      return;
  }
}

// Items split each sequence by itself, never by what else is in the step, and the thread
// count only decides who runs an item: no plan changes a row's arithmetic.
void plan_attention(const AttentionPlanParams& p, AttentionPlan& plan) {
  start_attention_plan(p, plan);
  const int group = p.num_q_heads / p.num_kv_heads;
  STRATA_CHECK(group <= kAttentionMaxRows);
  const int tile_queries = kAttentionMaxRows / group;
  for (int s = 0; s < p.num_prefill_seqs; ++s) {
    const AttentionSequence& seq = p.prefill_seqs[s];
    const int first_pos = seq.context_len - seq.num_queries;
    for (int q0 = 0; q0 < seq.num_queries; q0 += tile_queries) {
      const int q1 = q0 + tile_queries < seq.num_queries ? q0 + tile_queries : seq.num_queries;
      plan.prefill_items.push_back(
          {.seq = s, .q_begin = q0, .q_end = q1, .kv_len = first_pos + q1});
    }
  }
  // A context is never split across threads (decode_attention.h says why).
  plan.decode_splits = p.num_decode_seqs > 0 ? 1 : 0;
  const int64_t work = std::max(static_cast<int64_t>(plan.prefill_items.size()),
                                static_cast<int64_t>(p.num_decode_seqs)) * p.num_kv_heads;
  plan.threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(num_threads(), work)));
  plan.workspace_bytes = work == 0 ? 0
                                   : attention_workspace_floats(p.head_dim, p.block_size) *
                                         plan.threads * static_cast<int64_t>(sizeof(float));
  write_attention_metadata(p, plan);
}

void paged_attention(const PagedAttentionParams& p) {
  check_attention_run(p);
  const auto work = static_cast<int64_t>(p.plan->prefill_items.size()) * p.num_kv_heads;
  if (work == 0) return;
  STRATA_CHECK(p.plan->items != nullptr && p.plan->prefill_seqs != nullptr);  // bound
  const int threads = static_cast<int>(std::min<int64_t>(p.plan->threads, work));
  switch (cpu_isa()) {
    case CpuIsa::kAvx512:
      paged_attention_avx512(p, threads);
      return;
    case CpuIsa::kAvx2:
      paged_attention_avx2(p, threads);
      return;
    case CpuIsa::kScalar:
      paged_attention_scalar(p, threads);
      return;
  }
}

}  // namespace strata::kernels::cpu
