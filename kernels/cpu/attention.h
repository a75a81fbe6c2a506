// CPU paged attention (the general kernel: prefill chunks, or any mix with decode tokens):
// causal, grouped-query, fp32, online softmax over KV blocks read through each sequence's
// block table. Decode-only calls have their own kernel (decode_attention.h).
//
// Work is split into items of (sequence, KV head, tile of that sequence's queries). An item
// processes all query heads of its KV group for all queries of its tile together, so each
// K and V block is fetched once and then read from L1 by every row of the item (group ×
// query tile). Each (query, head) row still runs its own fixed sequence of operations, the
// one in attention_row.h, whichever item, tile, thread or kernel holds it, so outputs are
// batch invariant and equal to the decode kernel's bit for bit.
#pragma once

#include <cstdint>

#include "kernels/ops.h"

namespace strata::kernels::cpu {

// Work items are (prefill item, KV head) pairs, kAttentionMaxRows / group queries per item;
// one step plans them once (plan_attention) and every layer runs them.
void plan_attention(const AttentionPlanParams& p, AttentionPlan& plan);
void paged_attention(const PagedAttentionParams& p);

// Most (query, head) rows one item holds; sizes the per-thread workspace.
inline constexpr int kAttentionMaxRows = 64;

// Floats of one item's row state (accumulators, running max and sum, scores), at the start
// of its workspace; the fp32 images of an int8 K and V block (kv_rows.h) follow.
inline int64_t attention_row_state_floats(int head_dim, int block_size) {
  return static_cast<int64_t>(kAttentionMaxRows) * (head_dim + block_size + 2) + 16;
}

// Floats of per-thread workspace one item (prefill or decode) needs.
inline int64_t attention_workspace_floats(int head_dim, int block_size) {
  return attention_row_state_floats(head_dim, block_size) +
         2 * static_cast<int64_t>(block_size) * head_dim;
}

// The ISA paths: p.plan's items run in parallel on `threads` threads; thread t uses
// p.workspace + t · attention_workspace_floats floats.
void paged_attention_avx512(const PagedAttentionParams& p, int threads);
void paged_attention_avx2(const PagedAttentionParams& p, int threads);
void paged_attention_scalar(const PagedAttentionParams& p, int threads);

// s[j] = exp(s[j]) with the polynomial both attention kernels use (attention_row.h), on the
// current ISA path; exposed so tests can measure its error.
void attention_exp(float* s, int n);
void attention_exp_avx512(float* s, int n);
void attention_exp_avx2(float* s, int n);

}  // namespace strata::kernels::cpu
