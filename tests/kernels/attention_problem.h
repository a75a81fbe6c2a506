// A paged-attention problem for the CPU kernel tests: random fp32 K/V caches behind
// shuffled block tables, sequences mixing decode and chunked-prefill queries, a planned run
// through either kernel, and a double-precision reference of causal GQA attention.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/ops.h"
#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels::testing {

struct SeqSpec {
  int context_len;
  int num_queries;
};

// A filled KV cache and block tables handing out shuffled block ids.
struct Problem {
  int num_q_heads, num_kv_heads, head_dim, block_size;
  std::vector<SeqSpec> specs;
  std::vector<float> k_cache, v_cache, q;  // fp32 values (a typed cache's decoded values)
  // The cache the kernels read when cache_dtype is not fp32 (store_as fills it).
  DType cache_dtype = DType::kF32;
  std::vector<unsigned char> typed_k, typed_v;
  std::vector<std::vector<int32_t>> tables;
  std::vector<AttentionSequence> seqs;
  int num_tokens = 0;

  Problem(int nq, int nkv, int hd, int bs, std::vector<SeqSpec> s, uint32_t seed)
      : num_q_heads(nq), num_kv_heads(nkv), head_dim(hd), block_size(bs), specs(std::move(s)) {
    int num_blocks = 0;
    for (const auto& sp : specs) num_blocks += (sp.context_len + bs - 1) / bs;
    num_blocks += 3;  // unused blocks hold garbage the kernel must not read
    std::vector<int32_t> ids(static_cast<size_t>(num_blocks));
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), std::mt19937(seed));
    const size_t cache = static_cast<size_t>(num_blocks) * nkv * bs * hd;
    k_cache = random_floats(cache, seed + 1);
    v_cache = random_floats(cache, seed + 2);
    size_t next = 0;
    for (const auto& sp : specs) {
      std::vector<int32_t> t;
      for (int b = 0; b < (sp.context_len + bs - 1) / bs; ++b) t.push_back(ids[next++]);
      tables.push_back(std::move(t));
    }
    for (size_t i = 0; i < specs.size(); ++i) {
      seqs.push_back({.query_start = num_tokens, .num_queries = specs[i].num_queries,
                      .context_len = specs[i].context_len, .block_table = tables[i].data()});
      num_tokens += specs[i].num_queries;
    }
    q = random_floats(static_cast<size_t>(num_tokens) * nq * hd, seed + 3, -2.0f, 2.0f);
  }

  // Through the prefill kernel, or the decode kernel when decode is set: planned, then run.
  std::vector<float> run(const std::vector<AttentionSequence>& which, int tokens,
                         const float* q_data, bool decode = false) const {
    std::vector<float> out(static_cast<size_t>(tokens) * num_q_heads * head_dim, -7.0f);
    AttentionPlanParams pp{.num_q_heads = num_q_heads, .num_kv_heads = num_kv_heads,
                           .head_dim = head_dim, .block_size = block_size};
    (decode ? pp.decode_seqs : pp.prefill_seqs) = which.data();
    (decode ? pp.num_decode_seqs : pp.num_prefill_seqs) = static_cast<int>(which.size());
    AttentionPlan plan;
    cpu_backend().plan_attention(pp, plan);
    bind_attention_plan(plan, plan.metadata.data());  // CPU: the host image is backend memory
    std::vector<float> workspace(static_cast<size_t>(plan.workspace_bytes / 4));
    const auto kernel = decode ? cpu_backend().decode_attention : cpu_backend().paged_attention;
    const bool typed = cache_dtype != DType::kF32;
    kernel({.q = q_data, .q_stride = int64_t{num_q_heads} * head_dim,
            .k_cache = typed ? static_cast<const void*>(typed_k.data()) : k_cache.data(),
            .v_cache = typed ? static_cast<const void*>(typed_v.data()) : v_cache.data(),
            .cache_dtype = cache_dtype, .out = out.data(),
            .out_stride = int64_t{num_q_heads} * head_dim, .plan = &plan,
            .workspace = workspace.data(), .num_q_heads = num_q_heads,
            .num_kv_heads = num_kv_heads, .head_dim = head_dim, .block_size = block_size,
            .scale = 1.0f / std::sqrt(static_cast<float>(head_dim))});
    return out;
  }

  const float* cache_row(const std::vector<float>& cache, int s, int pos, int kvh) const {
    const int64_t block = tables[s][pos / block_size];
    return cache.data() +
           ((block * num_kv_heads + kvh) * block_size + pos % block_size) * head_dim;
  }

  void check(const std::vector<float>& out) const {
    const int group = num_q_heads / num_kv_heads;
    const double scale = 1.0 / std::sqrt(static_cast<double>(static_cast<float>(head_dim)));
    for (size_t s = 0; s < specs.size(); ++s) {
      for (int j = 0; j < specs[s].num_queries; ++j) {
        const int pos = specs[s].context_len - specs[s].num_queries + j;
        const int token = seqs[s].query_start + j;
        for (int h = 0; h < num_q_heads; ++h) {
          const float* qr = q.data() + (int64_t{token} * num_q_heads + h) * head_dim;
          std::vector<double> scores(static_cast<size_t>(pos + 1));
          double mx = -1e300;
          for (int t = 0; t <= pos; ++t) {
            const float* kr = cache_row(k_cache, static_cast<int>(s), t, h / group);
            double d = 0.0;
            for (int e = 0; e < head_dim; ++e) d += double{qr[e]} * kr[e];
            scores[t] = d * static_cast<float>(scale);
            mx = std::max(mx, scores[t]);
          }
          double sum = 0.0;
          for (auto& sc : scores) sum += (sc = std::exp(sc - mx));
          for (int e = 0; e < head_dim; ++e) {
            double ref = 0.0;
            for (int t = 0; t <= pos; ++t) {
              ref += scores[t] / sum * cache_row(v_cache, static_cast<int>(s), t, h / group)[e];
            }
            const float got = out[(int64_t{token} * num_q_heads + h) * head_dim + e];
            ASSERT_NEAR(got, ref, 2e-5 + 1e-5 * std::fabs(ref))
                << "seq " << s << " query " << j << " head " << h << " dim " << e;
          }
        }
      }
    }
  }
};

}  // namespace strata::kernels::testing
