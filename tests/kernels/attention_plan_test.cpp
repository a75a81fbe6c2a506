// The attention plan (kernels/ops.h): one plan per step serves every layer. Planned once
// and run over different KV pools, a plan gives the bits of planning per call; runs do not
// change it; and plan-then-run gives exactly the bits the kernels gave before plans existed
// (fingerprints recorded from the per-call kernels of commit c8061c6), at awkward sizes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cpu/isa.h"
#include "kernels/ops.h"
#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels {
namespace {

using testing::for_each_isa;
using testing::random_floats;

struct Case {
  int nq, nkv, hd, bs;
  bool decode;                             // all sequences through the decode kernel
  std::vector<std::pair<int, int>> specs;  // (context_len, num_queries)
};

// A KV pool in shuffled blocks with its sequences and queries.
struct Pool {
  Case c;
  std::vector<int32_t> ids;
  std::vector<float> k, v, q;
  std::vector<AttentionSequence> seqs;

  // Block tables from `seed`; K, V and queries from data_seed (default: the same).
  Pool(Case c_, uint32_t seed, int64_t data_seed = -1) : c(std::move(c_)) {
    int num_blocks = 3;  // unused blocks the kernels must not read
    for (auto [ctx, nq] : c.specs) num_blocks += (ctx + c.bs - 1) / c.bs;
    ids.resize(static_cast<size_t>(num_blocks));
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), std::mt19937(77 + seed));
    const size_t cache = static_cast<size_t>(num_blocks) * c.nkv * c.bs * c.hd;
    if (data_seed >= 0) seed = static_cast<uint32_t>(data_seed);
    k = random_floats(cache, 100 + seed);
    v = random_floats(cache, 200 + seed);
    int tokens = 0;
    size_t next = 0;
    for (auto [ctx, nq] : c.specs) {
      seqs.push_back({.query_start = tokens,
                      .num_queries = nq,
                      .context_len = ctx,
                      .block_table = ids.data() + next});
      next += static_cast<size_t>((ctx + c.bs - 1) / c.bs);
      tokens += nq;
    }
    q = random_floats(static_cast<size_t>(tokens) * c.nq * c.hd, 300 + seed, -2.0f, 2.0f);
  }

  AttentionPlan plan() const {
    AttentionPlanParams pp{
        .num_q_heads = c.nq, .num_kv_heads = c.nkv, .head_dim = c.hd, .block_size = c.bs};
    (c.decode ? pp.decode_seqs : pp.prefill_seqs) = seqs.data();
    (c.decode ? pp.num_decode_seqs : pp.num_prefill_seqs) = static_cast<int>(seqs.size());
    AttentionPlan plan;
    cpu_backend().plan_attention(pp, plan);
    bind_attention_plan(plan, plan.metadata.data());
    return plan;
  }

  // One layer's params on `plan` over this pool's caches and queries, into out.
  PagedAttentionParams params(const AttentionPlan& plan, std::vector<float>& out,
                              std::vector<float>& workspace) const {
    return {.q = q.data(),
            .q_stride = int64_t{c.nq} * c.hd,
            .k_cache = k.data(),
            .v_cache = v.data(),
            .out = out.data(),
            .out_stride = int64_t{c.nq} * c.hd,
            .plan = &plan,
            .workspace = workspace.data(),
            .num_q_heads = c.nq,
            .num_kv_heads = c.nkv,
            .head_dim = c.hd,
            .block_size = c.bs,
            .scale = 1.0f / std::sqrt(static_cast<float>(c.hd))};
  }

  // One layer's call on `plan`.
  std::vector<float> run(const AttentionPlan& plan) const {
    std::vector<float> out(q.size(), -7.0f);
    std::vector<float> workspace(static_cast<size_t>(plan.workspace_bytes / 4));
    const auto kernel = c.decode ? cpu_backend().decode_attention : cpu_backend().paged_attention;
    kernel(params(plan, out, workspace));
    return out;
  }
};

// Sequences of 1, 19 and 111 queries or rows, GQA and MHA, odd head dims and block sizes.
std::vector<Case> cases() {
  std::vector<Case> c;
  c.push_back(
      {8, 2, 64, 16, false, {{1, 1}, {19, 19}, {111, 111}, {40, 19}, {300, 1}, {130, 111}}});
  c.push_back({4, 1, 19, 4, false, {{19, 1}, {111, 19}, {1, 1}}});
  std::vector<std::pair<int, int>> decode;
  for (int i = 0; i < 111; ++i) decode.push_back({1 + (i * 37) % 300, 1});
  c.push_back({8, 2, 64, 16, true, decode});
  c.push_back({12, 12, 72, 32, true, {decode.begin(), decode.begin() + 19}});
  c.push_back({16, 2, 128, 16, true, {{989, 1}}});
  return c;
}

uint64_t fingerprint(const std::vector<float>& v) {  // FNV-1a over the output's bytes
  uint64_t h = 1469598103934665603ull;
  const auto* b = reinterpret_cast<const unsigned char*>(v.data());
  for (size_t i = 0; i < v.size() * sizeof(float); ++i) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(AttentionPlan, OnePlanServesManyLayersWithThePerCallBits) {
  for_each_isa([](cpu::CpuIsa) {
    for (const Case& c : cases()) {
      SCOPED_TRACE(::testing::Message() << "heads " << c.nq << "/" << c.nkv << " head_dim " << c.hd
                                        << " block " << c.bs << " decode " << c.decode);
      // Two layers: the same sequences and block tables (layer0's, which the step's one
      // plan points at) over different K, V and queries.
      const Pool layer0(c, 1), layer1(c, 1, /*data_seed=*/2);
      const AttentionPlan step = layer0.plan();
      const auto a0 = layer0.run(step);
      const auto a1 = layer1.run(step);
      const auto again = layer0.run(step);
      EXPECT_TRUE(same_bits(a0, layer0.run(layer0.plan())));
      EXPECT_TRUE(same_bits(a1, layer1.run(layer1.plan())));
      EXPECT_TRUE(same_bits(a0, again)) << "a run changed the plan";
      EXPECT_FALSE(same_bits(a0, a1));
    }
  });
}

// A step's plan as the engine makes it: decode tokens for the decode kernel, chunks for
// the prefill kernel, one plan and one workspace for both. Rows equal the all-prefill run.
TEST(AttentionPlan, OneMixedPlanFeedsBothKernels) {
  for_each_isa([](cpu::CpuIsa) {
    const Pool pool({8, 2, 64, 16, false, {{1, 1}, {19, 19}, {300, 1}, {111, 111}, {40, 1}}}, 5);
    std::vector<AttentionSequence> decode, prefill;
    for (const AttentionSequence& s : pool.seqs)
      (s.num_queries == 1 ? decode : prefill).push_back(s);
    const Case& c = pool.c;
    AttentionPlan plan;
    cpu_backend().plan_attention({.decode_seqs = decode.data(),
                                  .num_decode_seqs = static_cast<int>(decode.size()),
                                  .prefill_seqs = prefill.data(),
                                  .num_prefill_seqs = static_cast<int>(prefill.size()),
                                  .num_q_heads = c.nq,
                                  .num_kv_heads = c.nkv,
                                  .head_dim = c.hd,
                                  .block_size = c.bs},
                                 plan);
    bind_attention_plan(plan, plan.metadata.data());
    std::vector<float> out(pool.q.size(), -7.0f);
    std::vector<float> workspace(static_cast<size_t>(plan.workspace_bytes / 4));
    const PagedAttentionParams p = pool.params(plan, out, workspace);
    cpu_backend().decode_attention(p);
    cpu_backend().paged_attention(p);
    EXPECT_TRUE(same_bits(out, pool.run(pool.plan())));
  });
}

TEST(AttentionPlan, RunsOnTheThreadsItWasPlannedFor) {
  const Pool pool(cases()[0], 3);
  set_cpu_threads(2);
  const AttentionPlan plan = pool.plan();
  const auto two = pool.run(plan);
  EXPECT_EQ(plan.threads, 2);
  set_cpu_threads(1);  // runs keep the plan's two threads, whose rows its workspace holds
  EXPECT_TRUE(same_bits(two, pool.run(plan)));
  EXPECT_TRUE(same_bits(two, pool.run(pool.plan())));
  set_cpu_threads(0);
}

TEST(AttentionPlan, ItemsCoverEveryQueryOnceAndFitTheMetadataBound) {
  for (const Case& c : cases()) {
    const Pool pool(c, 4);
    const AttentionPlan plan = pool.plan();
    int64_t queries = 0;
    std::vector<int> covered(pool.seqs.size(), 0);
    for (const AttentionWorkItem& item : plan.prefill_items) {
      const AttentionSequence& seq = pool.seqs[static_cast<size_t>(item.seq)];
      EXPECT_EQ(item.q_begin, covered[static_cast<size_t>(item.seq)]);
      EXPECT_GT(item.q_end, item.q_begin);
      EXPECT_EQ(item.kv_len, seq.context_len - seq.num_queries + item.q_end);
      covered[static_cast<size_t>(item.seq)] = item.q_end;
    }
    for (size_t s = 0; s < pool.seqs.size(); ++s) {
      queries += pool.seqs[s].num_queries;
      if (!c.decode) {
        EXPECT_EQ(covered[s], pool.seqs[s].num_queries);
      }
    }
    EXPECT_EQ(plan.decode_splits, c.decode ? 1 : 0);  // the CPU never splits a context
    const int n = static_cast<int>(pool.seqs.size());
    EXPECT_LE(
        static_cast<int64_t>(plan.metadata.size()),
        attention_metadata_bytes_bound(c.decode ? n : 0, c.decode ? 0 : n, c.decode ? 0 : queries));
    EXPECT_GT(plan.workspace_bytes, 0);
  }
}

// Fingerprints of each case's output from the per-call kernels before this change (scalar,
// AVX2, AVX-512 rows; commit c8061c6), computed with the same pools.
constexpr uint64_t kBefore[3][5] = {
    {0x736ac92b2be4c856ull, 0x8616912f9b3f546bull, 0x850cfd9f66a48433ull, 0x92fa372b9384d75dull,
     0xd42286a71ed12f4dull},
    {0x376fb91ff0146f68ull, 0x8348ecd398305f66ull, 0x851757a21208d98full, 0x15f086f6757456bbull,
     0x115eba670987c62cull},
    {0x2c7101ad541ec7abull, 0x8df1ff5e22ed1ab7ull, 0xff7aefa30031cea8ull, 0x61ee36827a6fe64eull,
     0x64f4033ba7ea038cull},
};

TEST(AttentionPlan, PlanThenRunGivesTheBitsOfThePerCallKernels) {
  for_each_isa([](cpu::CpuIsa isa) {
    const std::vector<Case> all = cases();
    for (size_t i = 0; i < all.size(); ++i) {
      const Pool pool(all[i], static_cast<uint32_t>(i));
      EXPECT_EQ(fingerprint(pool.run(pool.plan())), kBefore[static_cast<int>(isa)][i])
          << "case " << i;
    }
  });
}

}  // namespace
}  // namespace strata::kernels
