// The prefill attention loop shared by the ISA files, as a template over vector primitives
// (the V contract is in attention_row.h). Each ISA file instantiates it with a primitives
// type from its own anonymous namespace, so every instantiation has internal linkage and is
// compiled for that file's ISA only. Everything here is a template for that reason (isa.h).
#pragma once

#include <omp.h>

#include <cstdint>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_row.h"
#include "kernels/cpu/kv_rows.h"

namespace strata::kernels::cpu::detail {

template <class V, DType D, DType Read>
void attend_item(const PagedAttentionParams& p, const AttentionWorkItem& item, int kv_head,
                 float* ws) {
  const AttentionSequence& seq = p.plan->prefill_seqs[item.seq];
  const int group = p.num_q_heads / p.num_kv_heads;
  const int hd = p.head_dim;
  const int bs = p.block_size;
  const int rows = (item.q_end - item.q_begin) * group;
  // Row rr is query item.q_begin + rr / group, head kv_head · group + rr % group.
  float* acc = ws;                   // [rows, hd]
  float* row_max = acc + rows * hd;  // [rows]
  float* row_sum = row_max + rows;   // [rows]
  float* score = row_sum + rows;     // [bs]
  float* k_scratch = ws + attention_row_state_floats(hd, bs);  // int8 (kv_rows.h)
  float* v_scratch = k_scratch + kv_tile_scratch_floats(bs, hd);
  for (int i = 0; i < rows * hd; ++i) acc[i] = 0.0f;
  for (int r = 0; r < rows; ++r) {
    row_max[r] = -__builtin_inff();
    row_sum[r] = 0.0f;
  }

  // Query j of the sequence sits at position first_pos + j and sees positions 0..that.
  const int first_pos = seq.context_len - seq.num_queries;
  const int last_pos = first_pos + item.q_end - 1;
  const int num_blocks = last_pos / bs + 1;
  const float* q_base = p.q + static_cast<int64_t>(seq.query_start + item.q_begin) * p.q_stride +
                        static_cast<int64_t>(kv_head) * group * hd;

  for (int b = 0; b < num_blocks; ++b) {
    const int p0 = b * bs;
    const int64_t tile = static_cast<int64_t>(seq.block_table[b]) * p.num_kv_heads + kv_head;
    // Positions the item's last row sees in this block: what any row reads of it.
    const int seen = last_pos + 1 - p0 < bs ? last_pos + 1 - p0 : bs;
    using Rows = typename V::template Rows<Read>;
    const Rows k_block{kv_tile<D, Read>(p.k_cache, tile, bs, hd, seen, k_scratch)};
    const Rows v_block{kv_tile<D, Read>(p.v_cache, tile, bs, hd, seen, v_scratch)};
    // Rows of queries before p0 are causally masked from the whole block. The block stays
    // in L1 while every remaining row of the item reads it.
    const int q_first = p0 - first_pos - item.q_begin;
    for (int r = q_first > 0 ? q_first * group : 0; r < rows; ++r) {
      const int pos = first_pos + item.q_begin + r / group;
      const int n = (pos + 1 - p0) < bs ? (pos + 1 - p0) : bs;
      const float* q_row = q_base + static_cast<int64_t>(r / group) * p.q_stride +
                           static_cast<int64_t>(r % group) * hd;
      attend_row_block<V>(q_row, k_block, v_block, n, hd, p.scale, score, row_max + r, row_sum + r,
                          acc + static_cast<int64_t>(r) * hd);
    }
  }

  float* out_base = p.out + static_cast<int64_t>(seq.query_start + item.q_begin) * p.out_stride +
                    static_cast<int64_t>(kv_head) * group * hd;
  for (int r = 0; r < rows; ++r) {
    float* out_row = out_base + static_cast<int64_t>(r / group) * p.out_stride +
                     static_cast<int64_t>(r % group) * hd;
    V::store_scaled(out_row, acc + r * hd, 1.0f / row_sum[r], hd);
  }
}

// Work item i is the plan's item i / num_kv_heads for KV head i % num_kv_heads. Tiles of
// later queries see more positions; dynamic scheduling balances them.
template <class V, DType D, DType Read>
void attend_all_as(const PagedAttentionParams& p, int threads) {
  const AttentionPlan& plan = *p.plan;
  const int64_t num_items = static_cast<int64_t>(plan.prefill_items.size()) * p.num_kv_heads;
  const int64_t ws_floats = attention_workspace_floats(p.head_dim, p.block_size);
  float* workspace = static_cast<float*>(p.workspace);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t i = 0; i < num_items; ++i) {
    attend_item<V, D, Read>(p, plan.items[i / p.num_kv_heads], static_cast<int>(i % p.num_kv_heads),
                      workspace + omp_get_thread_num() * ws_floats);
  }
}

template <class V>
void attend_all(const PagedAttentionParams& p, int threads) {
  with_cache_dtype(p, [&]<DType D, DType Read>() { attend_all_as<V, D, Read>(p, threads); });
}

}  // namespace strata::kernels::cpu::detail
