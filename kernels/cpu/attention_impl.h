// The attention loop shared by the ISA files, as a template over vector primitives.
// Each ISA file instantiates it with a primitives type from its own anonymous namespace,
// so every instantiation has internal linkage and is compiled for that file's ISA only.
// Everything here is a template for that reason (see isa.h).
//
// V must provide, over n floats and each in one fixed order:
//   float dot(const float* a, const float* b, int n);
//   void scale(float* acc, float alpha, int n);            // acc ·= alpha
//   void axpy(float* acc, float e, const float* v, int n); // acc += e · v (fused)
//   void store_scaled(float* out, const float* acc, float s, int n);  // out = acc · s
#pragma once

#include <omp.h>

#include <cstdint>

#include "kernels/cpu/attention.h"

namespace strata::kernels::cpu::detail {

template <class V>
void attend_item(const PagedAttentionParams& p, const AttentionWork& item, float* ws) {
  const AttentionSequence& seq = p.seqs[item.seq];
  const int group = p.num_q_heads / p.num_kv_heads;
  const int hd = p.head_dim;
  const int bs = p.block_size;
  const int rows = (item.q_end - item.q_begin) * group;
  // Row rr is query item.q_begin + rr / group, head kv_head · group + rr % group.
  float* acc = ws;                      // [rows, hd]
  float* row_max = acc + rows * hd;     // [rows]
  float* row_sum = row_max + rows;      // [rows]
  float* score = row_sum + rows;        // [rows, bs]
  for (int i = 0; i < rows * hd; ++i) acc[i] = 0.0f;
  for (int r = 0; r < rows; ++r) {
    row_max[r] = -__builtin_inff();
    row_sum[r] = 0.0f;
  }

  // Query j of the sequence sits at position first_pos + j and sees positions 0..that.
  const int first_pos = seq.context_len - seq.num_queries;
  const int last_pos = first_pos + item.q_end - 1;
  const int num_blocks = last_pos / bs + 1;
  const int64_t head_stride = static_cast<int64_t>(bs) * hd;
  const float* q_base = p.q + static_cast<int64_t>(seq.query_start + item.q_begin) * p.q_stride +
                        static_cast<int64_t>(item.kv_head) * group * hd;

  for (int b = 0; b < num_blocks; ++b) {
    const int p0 = b * bs;
    const int64_t block = seq.block_table[b];
    const float* k_block = p.k_cache + (block * p.num_kv_heads + item.kv_head) * head_stride;
    const float* v_block = p.v_cache + (block * p.num_kv_heads + item.kv_head) * head_stride;
    const int np = (last_pos + 1 - p0) < bs ? (last_pos + 1 - p0) : bs;
    // Rows before first_row(pos) are queries earlier than pos: causally masked.
    auto first_row = [&](int pos) {
      const int q = pos - first_pos - item.q_begin;
      return q > 0 ? q * group : 0;
    };

    for (int j = 0; j < np; ++j) {
      const float* k_row = k_block + static_cast<int64_t>(j) * hd;
      for (int r = first_row(p0 + j); r < rows; ++r) {
        const float* q_row = q_base + static_cast<int64_t>(r / group) * p.q_stride +
                             static_cast<int64_t>(r % group) * hd;
        score[r * bs + j] = V::dot(q_row, k_row, hd) * p.scale;
      }
    }
    for (int r = first_row(p0); r < rows; ++r) {
      const int pos = first_pos + item.q_begin + r / group;
      const int valid = (pos + 1 - p0) < np ? (pos + 1 - p0) : np;
      float* s = score + r * bs;
      float block_max = s[0];
      for (int j = 1; j < valid; ++j) block_max = s[j] > block_max ? s[j] : block_max;
      const float new_max = block_max > row_max[r] ? block_max : row_max[r];
      const float alpha = __builtin_expf(row_max[r] - new_max);
      float sum = row_sum[r] * alpha;
      V::scale(acc + r * hd, alpha, hd);
      for (int j = 0; j < valid; ++j) {
        s[j] = __builtin_expf(s[j] - new_max);
        sum += s[j];
      }
      row_sum[r] = sum;
      row_max[r] = new_max;
    }
    for (int j = 0; j < np; ++j) {
      const float* v_row = v_block + static_cast<int64_t>(j) * hd;
      for (int r = first_row(p0 + j); r < rows; ++r) {
        V::axpy(acc + r * hd, score[r * bs + j], v_row, hd);
      }
    }
  }

  float* out_base = p.out +
                    static_cast<int64_t>(seq.query_start + item.q_begin) * p.out_stride +
                    static_cast<int64_t>(item.kv_head) * group * hd;
  for (int r = 0; r < rows; ++r) {
    float* out_row = out_base + static_cast<int64_t>(r / group) * p.out_stride +
                     static_cast<int64_t>(r % group) * hd;
    V::store_scaled(out_row, acc + r * hd, 1.0f / row_sum[r], hd);
  }
}

template <class V>
void attend_all(const PagedAttentionParams& p, const AttentionWork* items, int64_t num_items,
                float* workspace, int64_t ws_floats, int threads) {
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t i = 0; i < num_items; ++i) {
    attend_item<V>(p, items[i], workspace + omp_get_thread_num() * ws_floats);
  }
}

}  // namespace strata::kernels::cpu::detail
