// Paged attention dispatcher and the portable (scalar) primitives of both attention
// kernels (prefill here, decode in decode_attention.cpp).
#include "kernels/cpu/attention.h"

#include <cstring>
#include <vector>

#include "common/check.h"
#include "kernels/cpu/attention_impl.h"
#include "kernels/cpu/decode_attention_impl.h"
#include "kernels/cpu/isa.h"

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

struct Scalar {
  static void scores(const float* q, const float* k, int n, int hd, float scale, float* s) {
    for (int j = 0; j < n; ++j) {
      const float* kr = k + static_cast<int64_t>(j) * hd;
      float acc = 0.0f;
      for (int i = 0; i < hd; ++i) acc += q[i] * kr[i];
      s[j] = acc * scale;
    }
  }
  static void scale(float* acc, float alpha, int n) {
    for (int i = 0; i < n; ++i) acc[i] *= alpha;
  }
  static void accumulate(float* acc, const float* e, const float* v, int n, int hd) {
    for (int j = 0; j < n; ++j) {
      const float* vr = v + static_cast<int64_t>(j) * hd;
      for (int i = 0; i < hd; ++i) acc[i] += e[j] * vr[i];
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

void paged_attention_scalar(const PagedAttentionParams& p, const AttentionWork* items,
                            int64_t num_items, float* workspace, int64_t ws_floats, int threads) {
  detail::attend_all<Scalar>(p, items, num_items, workspace, ws_floats, threads);
}

void decode_attention_scalar(const PagedAttentionParams& p, float* workspace, int64_t ws_floats,
                             int threads) {
  detail::decode_all<Scalar>(p, workspace, ws_floats, threads);
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

void paged_attention(const PagedAttentionParams& p) {
  STRATA_CHECK(p.num_kv_heads > 0 && p.num_q_heads % p.num_kv_heads == 0);
  STRATA_CHECK(p.head_dim > 0 && p.block_size > 0);
  const int group = p.num_q_heads / p.num_kv_heads;
  STRATA_CHECK(group <= kAttentionMaxRows);
  const int tile_queries = kAttentionMaxRows / group;

  // Per-thread storage that only grows, as in gemm.cpp.
  thread_local std::vector<AttentionWork> items;
  thread_local std::vector<float> workspace;
  items.clear();
  for (int s = 0; s < p.num_seqs; ++s) {
    const AttentionSequence& seq = p.seqs[s];
    STRATA_CHECK(seq.num_queries >= 0 && seq.context_len >= seq.num_queries);
    // Tiles of later queries see more positions; dynamic scheduling balances them.
    for (int q0 = 0; q0 < seq.num_queries; q0 += tile_queries) {
      const int q1 = q0 + tile_queries < seq.num_queries ? q0 + tile_queries : seq.num_queries;
      for (int h = 0; h < p.num_kv_heads; ++h) {
        items.push_back({.seq = s, .kv_head = h, .q_begin = q0, .q_end = q1});
      }
    }
  }
  if (items.empty()) return;
  int threads = num_threads();
  if (static_cast<int64_t>(items.size()) < threads) threads = static_cast<int>(items.size());
  const int64_t ws_floats = attention_workspace_floats(p);
  if (workspace.size() < static_cast<size_t>(ws_floats * threads)) {
    workspace.resize(static_cast<size_t>(ws_floats * threads));
  }
  const auto n = static_cast<int64_t>(items.size());
  switch (cpu_isa()) {
    case CpuIsa::kAvx512:
      paged_attention_avx512(p, items.data(), n, workspace.data(), ws_floats, threads);
      return;
    case CpuIsa::kAvx2:
      paged_attention_avx2(p, items.data(), n, workspace.data(), ws_floats, threads);
      return;
    case CpuIsa::kScalar:
      paged_attention_scalar(p, items.data(), n, workspace.data(), ws_floats, threads);
      return;
  }
}

}  // namespace strata::kernels::cpu
