// Paged attention dispatcher and the portable (scalar) primitives.
#include "kernels/cpu/attention.h"

#include <vector>

#include "common/check.h"
#include "kernels/cpu/attention_impl.h"
#include "kernels/cpu/isa.h"

namespace strata::kernels::cpu {
namespace {

struct Scalar {
  static float dot(const float* a, const float* b, int n) {
    float acc = 0.0f;
    for (int i = 0; i < n; ++i) acc += a[i] * b[i];
    return acc;
  }
  static void scale(float* acc, float alpha, int n) {
    for (int i = 0; i < n; ++i) acc[i] *= alpha;
  }
  static void axpy(float* acc, float e, const float* v, int n) {
    for (int i = 0; i < n; ++i) acc[i] += e * v[i];
  }
  static void store_scaled(float* out, const float* acc, float s, int n) {
    for (int i = 0; i < n; ++i) out[i] = acc[i] * s;
  }
};

}  // namespace

void paged_attention_scalar(const PagedAttentionParams& p, const AttentionWork* items,
                            int64_t num_items, float* workspace, int64_t ws_floats,
                            int threads) {
  detail::attend_all<Scalar>(p, items, num_items, workspace, ws_floats, threads);
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
