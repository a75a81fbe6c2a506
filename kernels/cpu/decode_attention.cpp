// Decode attention dispatcher: checks the decode-only precondition, sizes the per-thread
// workspace and picks the ISA path. The scalar path's primitives live in attention.cpp.
#include "kernels/cpu/decode_attention.h"

#include <vector>

#include "common/check.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/isa.h"

namespace strata::kernels::cpu {

void decode_attention(const PagedAttentionParams& p) {
  STRATA_CHECK(p.num_kv_heads > 0 && p.num_q_heads % p.num_kv_heads == 0);
  STRATA_CHECK(p.head_dim > 0 && p.block_size > 0);
  STRATA_CHECK(p.num_q_heads / p.num_kv_heads <= kAttentionMaxRows);
  for (int s = 0; s < p.num_seqs; ++s) {
    // A prefill chunk here is a routing bug in the caller (use paged_attention).
    STRATA_CHECK(p.seqs[s].num_queries == 1 && p.seqs[s].context_len >= 1);
  }
  const int64_t num_items = static_cast<int64_t>(p.num_seqs) * p.num_kv_heads;
  if (num_items == 0) return;
  int threads = num_threads();
  if (num_items < threads) threads = static_cast<int>(num_items);
  // Per-thread storage that only grows, as in gemm.cpp.
  thread_local std::vector<float> workspace;
  const int64_t ws_floats = attention_workspace_floats(p);
  if (workspace.size() < static_cast<size_t>(ws_floats * threads)) {
    workspace.resize(static_cast<size_t>(ws_floats * threads));
  }
  switch (cpu_isa()) {
    case CpuIsa::kAvx512:
      decode_attention_avx512(p, workspace.data(), ws_floats, threads);
      return;
    case CpuIsa::kAvx2:
      decode_attention_avx2(p, workspace.data(), ws_floats, threads);
      return;
    case CpuIsa::kScalar:
      decode_attention_scalar(p, workspace.data(), ws_floats, threads);
      return;
  }
}

}  // namespace strata::kernels::cpu
