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
#include "tests/kernels/attention_problem.h"
#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels {
namespace {

using testing::for_each_isa;
using testing::Problem;
using testing::SeqSpec;

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
