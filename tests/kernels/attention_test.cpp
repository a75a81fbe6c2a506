// Paged attention against a double-precision reference (causal, GQA, random non-contiguous
// block tables, mixed decode and chunked-prefill sequences), for every CPU path; bitwise
// batch invariance: a query's output is the same alone, in a batch, at any thread count,
// and whether it is computed in a prefill tile, as a decode step of the prefill kernel, or
// by the decode kernel; and the error of the attention exp polynomial.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/ops.h"
#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels {
namespace {

using testing::for_each_isa;
using testing::random_floats;

struct SeqSpec {
  int context_len;
  int num_queries;
};

// A filled KV cache and block tables handing out shuffled block ids.
struct Problem {
  int num_q_heads, num_kv_heads, head_dim, block_size;
  std::vector<SeqSpec> specs;
  std::vector<float> k_cache, v_cache, q;
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
    kernel({.q = q_data, .q_stride = int64_t{num_q_heads} * head_dim, .k_cache = k_cache.data(),
            .v_cache = v_cache.data(), .out = out.data(),
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

TEST(PagedAttention, MatchesDoubleReferenceAcrossShapesAndPaths) {
  const std::vector<SeqSpec> mix = {{1, 1}, {17, 1}, {300, 1}, {33, 33}, {150, 40}, {64, 64}};
  struct Shape { int nq, nkv, hd, bs; };
  for_each_isa([&](cpu::CpuIsa) {
    for (Shape sh : {Shape{4, 4, 64, 16}, Shape{8, 4, 128, 32}, Shape{8, 2, 72, 16},
                     Shape{4, 1, 64, 32}}) {
      SCOPED_TRACE(::testing::Message() << "heads " << sh.nq << "/" << sh.nkv << " head_dim "
                                        << sh.hd << " block " << sh.bs);
      Problem pr(sh.nq, sh.nkv, sh.hd, sh.bs, mix, 5);
      pr.check(pr.run(pr.seqs, pr.num_tokens, pr.q.data()));
    }
  });
}

TEST(DecodeAttention, MatchesDoubleReferenceAcrossShapesAndPaths) {
  const std::vector<SeqSpec> mix = {{1, 1}, {17, 1}, {300, 1}, {33, 1}, {16, 1}, {64, 1}};
  struct Shape { int nq, nkv, hd, bs; };
  for_each_isa([&](cpu::CpuIsa) {
    for (Shape sh : {Shape{4, 4, 64, 16}, Shape{8, 4, 128, 32}, Shape{8, 2, 72, 16},
                     Shape{8, 1, 19, 4}}) {
      SCOPED_TRACE(::testing::Message() << "heads " << sh.nq << "/" << sh.nkv << " head_dim "
                                        << sh.hd << " block " << sh.bs);
      Problem pr(sh.nq, sh.nkv, sh.hd, sh.bs, mix, 6);
      pr.check(pr.run(pr.seqs, pr.num_tokens, pr.q.data(), /*decode=*/true));
    }
  });
}

// The engine recomputes a preempted request's tokens through prefill, so a token's row must
// not depend on which kernel ran it. Every context 1..300 is one sequence whose prefill
// chunk (1 to 5 queries) ends there; its last row, and a query-length-1 call of the prefill
// kernel, must equal the decode kernel's row bit for bit.
TEST(DecodeAttention, RowsAreBitIdenticalToThePrefillKernel) {
  constexpr int kMaxContext = 300;
  std::vector<SeqSpec> chunks, singles;
  for (int c = 1; c <= kMaxContext; ++c) {
    chunks.push_back({c, std::min(c, 1 + c % 5)});
    singles.push_back({c, 1});
  }
  // Problems outside the ISA loop: filling the caches costs more than the kernels.
  for (int group : {1, 2, 4, 8}) {
    for (int hd : {64, 128, 19}) {
      for (int bs : {4, 16, 32}) {
        const int nkv = group == 8 ? 1 : 2;
        const Problem pr(group * nkv, nkv, hd, bs, chunks, 11);
        // The same caches and tables, one decode query per sequence: each chunk's last
        // query row, packed.
        const int64_t row = int64_t{pr.num_q_heads} * hd;
        std::vector<float> last_q(static_cast<size_t>(kMaxContext * row));
        std::vector<AttentionSequence> decode_seqs;
        for (int s = 0; s < kMaxContext; ++s) {
          const AttentionSequence& c = pr.seqs[static_cast<size_t>(s)];
          const int token = c.query_start + c.num_queries - 1;
          std::copy(pr.q.begin() + token * row, pr.q.begin() + (token + 1) * row,
                    last_q.begin() + s * row);
          decode_seqs.push_back({.query_start = s, .num_queries = 1,
                                 .context_len = c.context_len, .block_table = c.block_table});
        }
        for_each_isa([&](cpu::CpuIsa) {
          SCOPED_TRACE(::testing::Message() << "group " << group << " head_dim " << hd
                                            << " block " << bs);
          set_cpu_threads(2);
          const auto prefill = pr.run(pr.seqs, pr.num_tokens, pr.q.data());
          const auto decode = pr.run(decode_seqs, kMaxContext, last_q.data(), true);
          set_cpu_threads(1);
          const auto prefill_q1 = pr.run(decode_seqs, kMaxContext, last_q.data());
          ASSERT_EQ(0, std::memcmp(decode.data(), prefill_q1.data(), decode.size() * sizeof(float)))
              << "decode kernel differs from the prefill kernel at query length 1";
          for (int s = 0; s < kMaxContext; ++s) {
            const AttentionSequence& c = pr.seqs[static_cast<size_t>(s)];
            const int token = c.query_start + c.num_queries - 1;
            ASSERT_EQ(0, std::memcmp(decode.data() + s * row, prefill.data() + token * row,
                                     row * sizeof(float)))
                << "context " << c.context_len << ": decode row differs from the last row of "
                << c.num_queries << "-query prefill chunk";
          }
        });
      }
    }
  }
}

// The polynomial exp both kernels use: within 2 ulp of exp in double over the softmax's
// range, exactly 0 at −inf and below the normal range, and 1 at 0.
TEST(AttentionExp, IsWithinTwoUlpOnEveryPath) {
  std::vector<float> xs;
  for (float x = -87.0f; x <= 10.0f; x += 0.00731f) xs.push_back(x);
  for (float x : {0.0f, -0.0f, 1e-8f, -1e-8f, -87.33f, 88.0f}) xs.push_back(x);
  const std::vector<float> zero = {-__builtin_inff(), -87.4f, -100.0f, -1e30f};
  for_each_isa([&](cpu::CpuIsa) {
    std::vector<float> y = xs;
    cpu::attention_exp(y.data(), static_cast<int>(y.size()));
    for (size_t i = 0; i < xs.size(); ++i) {
      const double ref = std::exp(static_cast<double>(xs[i]));
      const double ulp = std::nextafter(static_cast<float>(ref), __builtin_inff()) -
                         static_cast<float>(ref);
      ASSERT_LE(std::fabs(y[i] - ref), 2.0 * ulp) << "exp(" << xs[i] << ") = " << y[i];
    }
    std::vector<float> z = zero;
    cpu::attention_exp(z.data(), static_cast<int>(z.size()));
    for (size_t i = 0; i < z.size(); ++i) EXPECT_EQ(z[i], 0.0f) << "exp(" << zero[i] << ")";
    float one = 0.0f;
    cpu::attention_exp(&one, 1);
    EXPECT_EQ(one, 1.0f);
  });
}

TEST(PagedAttention, QueryOutputIsBitIdenticalAloneInBatchAndAsDecode) {
  for_each_isa([](cpu::CpuIsa) {
    // Sequence 1 is a 120-token prefill chunk at the end of a 200-token context.
    Problem pr(8, 2, 128, 16, {{90, 1}, {200, 120}, {37, 1}, {5, 5}}, 9);
    const int64_t row = int64_t{pr.num_q_heads} * pr.head_dim;
    set_cpu_threads(2);
    const auto batch = pr.run(pr.seqs, pr.num_tokens, pr.q.data());
    set_cpu_threads(1);
    // Sequence 0 alone, one thread.
    {
      std::vector<AttentionSequence> one = {pr.seqs[0]};
      one[0].query_start = 0;
      const auto alone = pr.run(one, 1, pr.q.data());
      ASSERT_EQ(0, std::memcmp(alone.data(), batch.data(), row * sizeof(float)));
    }
    // Prefill queries of sequence 1 recomputed as single decode steps.
    for (int j : {0, 15, 16, 63, 119}) {
      const int token = pr.seqs[1].query_start + j;
      std::vector<AttentionSequence> one = {pr.seqs[1]};
      one[0].query_start = 0;
      one[0].num_queries = 1;
      one[0].context_len = 200 - 120 + j + 1;
      const auto alone = pr.run(one, 1, pr.q.data() + token * row);
      ASSERT_EQ(0, std::memcmp(alone.data(), batch.data() + token * row, row * sizeof(float)))
          << "prefill query " << j << " differs from its decode recomputation";
    }
  });
}

}  // namespace
}  // namespace strata::kernels
