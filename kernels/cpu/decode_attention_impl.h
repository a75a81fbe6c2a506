// The decode attention loop shared by the ISA files, as a template over the vector
// primitives of attention_row.h (instantiated per ISA file; everything is a template, see
// isa.h). One item is one (sequence, KV head): its GQA group of query heads are the rows,
// and each KV block, fetched once through the block table, serves all of them.
#pragma once

#include <omp.h>

#include <cstdint>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_row.h"
#include "kernels/cpu/decode_attention.h"
#include "kernels/cpu/kv_rows.h"

namespace strata::kernels::cpu::detail {

inline constexpr int kPrefetchBlocks = 2;

template <class V, DType D, DType Read>
void decode_item(const PagedAttentionParams& p, int seq_index, int kv_head, float* ws) {
  const AttentionSequence& seq = p.plan->decode_seqs[seq_index];
  const int group = p.num_q_heads / p.num_kv_heads;
  const int hd = p.head_dim;
  const int bs = p.block_size;
  float* acc = ws;                    // [group, hd]
  float* row_max = acc + group * hd;  // [group]
  float* row_sum = row_max + group;   // [group]
  float* score = row_sum + group;     // [group, bs]
  float* k_scratch = ws + attention_row_state_floats(hd, bs);  // int8 (kv_rows.h)
  float* v_scratch = k_scratch + kv_tile_scratch_floats(bs, hd);
  for (int i = 0; i < group * hd; ++i) acc[i] = 0.0f;
  for (int r = 0; r < group; ++r) {
    row_max[r] = -__builtin_inff();
    row_sum[r] = 0.0f;
  }

  const int num_blocks = (seq.context_len + bs - 1) / bs;
  const int64_t tile_bytes = kv_tile_bytes(p.cache_dtype, bs, hd);
  const float* q_base = p.q + static_cast<int64_t>(seq.query_start) * p.q_stride +
                        static_cast<int64_t>(kv_head) * group * hd;
  // Asks for whole K and V blocks ahead of use. Blocks sit at random places in the cache
  // (each usually on its own page), so the hardware prefetchers only pick a block up after
  // its first misses. kPrefetchBlocks blocks ahead: one already covers DRAM latency in
  // steady state, a second absorbs page walks and other threads' bursts.
  // (A lambda, not a helper function: an inline function here would have external linkage
  // and one copy per ISA, see isa.h.)
  auto tile_of = [&](int b) {
    return static_cast<int64_t>(seq.block_table[b]) * p.num_kv_heads + kv_head;
  };
  auto prefetch_tile = [tile_bytes](const void* cache, int64_t tile) {
    const char* c = static_cast<const char*>(cache) + tile * tile_bytes;
    for (int64_t off = 0; off < tile_bytes; off += 64) __builtin_prefetch(c + off, 0, 3);
  };
  for (int b = 1; b < kPrefetchBlocks && b < num_blocks; ++b) {
    prefetch_tile(p.k_cache, tile_of(b));
    prefetch_tile(p.v_cache, tile_of(b));
  }
  for (int b = 0; b < num_blocks; ++b) {
    if (b + kPrefetchBlocks < num_blocks) {
      prefetch_tile(p.k_cache, tile_of(b + kPrefetchBlocks));
      prefetch_tile(p.v_cache, tile_of(b + kPrefetchBlocks));
    }
    const int remaining = seq.context_len - b * bs;
    const int n = remaining < bs ? remaining : bs;
    using Rows = typename V::template Rows<Read>;
    const Rows k_block{kv_tile<D, Read>(p.k_cache, tile_of(b), bs, hd, n, k_scratch)};
    const Rows v_block{kv_tile<D, Read>(p.v_cache, tile_of(b), bs, hd, n, v_scratch)};
    // attend_row_block's three steps, each over all rows before the next, so the rows'
    // independent dependency chains (score reductions, softmax, accumulation) overlap.
    for (int r = 0; r < group; ++r) {
      V::scores(q_base + static_cast<int64_t>(r) * hd, k_block, n, hd, p.scale, score + r * bs);
    }
    for (int r = 0; r < group; ++r) {
      softmax_block<V>(score + r * bs, n, row_max + r, row_sum + r, acc + r * hd, hd);
    }
    for (int r = 0; r < group; ++r) {
      V::accumulate(acc + static_cast<int64_t>(r) * hd, score + r * bs, v_block, n, hd);
    }
  }

  float* out_base = p.out + static_cast<int64_t>(seq.query_start) * p.out_stride +
                    static_cast<int64_t>(kv_head) * group * hd;
  for (int r = 0; r < group; ++r) {
    V::store_scaled(out_base + static_cast<int64_t>(r) * hd, acc + r * hd, 1.0f / row_sum[r], hd);
  }
}

// Items (sequence, KV head) in parallel; equal contexts make static chunks even, and
// dynamic scheduling absorbs mixed lengths at one atomic per item.
template <class V, DType D, DType Read>
void decode_all_as(const PagedAttentionParams& p, int threads) {
  const int64_t num_items = static_cast<int64_t>(p.plan->num_decode_seqs) * p.num_kv_heads;
  const int64_t ws_floats = attention_workspace_floats(p.head_dim, p.block_size);
  float* workspace = static_cast<float*>(p.workspace);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t i = 0; i < num_items; ++i) {
    decode_item<V, D, Read>(p, static_cast<int>(i / p.num_kv_heads),
                      static_cast<int>(i % p.num_kv_heads),
                      workspace + omp_get_thread_num() * ws_floats);
  }
}

template <class V>
void decode_all(const PagedAttentionParams& p, int threads) {
  with_cache_dtype(p, [&]<DType D, DType Read>() { decode_all_as<V, D, Read>(p, threads); });
}

}  // namespace strata::kernels::cpu::detail
