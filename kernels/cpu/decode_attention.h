// CPU decode attention: one query per sequence over its paged KV cache, grouped-query.
//
// Decode reads every cached K and V once per step and does little arithmetic per byte, so
// it is bound by memory reads. The kernel therefore works per (sequence, KV head): the
// whole GQA group of query heads shares each K/V block load, blocks are read in table
// order, and the next block is prefetched while the current one is processed.
//
// Each (query, head) row runs exactly the per-row arithmetic of attention_row.h, the same
// as the prefill kernel (attention.h), so both produce identical bits for the same row on
// each ISA path. For that reason a long context is not split across threads: combining
// partial softmaxes would change a row's arithmetic unless prefill split identically.
#pragma once

#include <cstdint>

#include "kernels/ops.h"

namespace strata::kernels::cpu {

// The plan's decode sequences (plan_attention checked num_queries == 1, context_len >= 1).
void decode_attention(const PagedAttentionParams& p);

// The ISA paths: (sequence, KV head) items in parallel on `threads` threads; thread t uses
// p.workspace + t · attention_workspace_floats floats (see attention.h).
void decode_attention_avx512(const PagedAttentionParams& p, int threads);
void decode_attention_avx2(const PagedAttentionParams& p, int threads);
void decode_attention_scalar(const PagedAttentionParams& p, int threads);

}  // namespace strata::kernels::cpu
