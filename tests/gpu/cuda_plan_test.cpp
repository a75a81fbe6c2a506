// The CUDA kernels' launch planning, checked against hand-worked cases for the awkward
// sizes the GPU tests use (1, 19, 111, 989 rows; head dims 32/64/128; block sizes 16/32).
// Runs without nvcc or a GPU.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/cuda/plan/gemm_w4a16_plan.h"
#include "kernels/cuda/plan/graph_buckets.h"
#include "kernels/cuda/plan/launch_plan.h"
#include "kernels/cuda/plan/memory_plan.h"
#include "kernels/cuda/plan/w8a8_plan.h"

namespace strata::kernels::cuda {
namespace {

TEST(AttentionConfig, AcceptsTheSupportedTableAndNamesTheBadField) {
  for (int hd : AttentionConfigTable::kHeadDims) {
    for (int bs : AttentionConfigTable::kBlockSizes) {
      EXPECT_EQ(attention_config_error(32, 8, hd, bs), "") << hd << " " << bs;
    }
  }
  EXPECT_EQ(attention_config_error(32, 8, 96, 16),
            "CUDA attention: head_dim must be one of 32, 64, 128. Given: 96");
  EXPECT_NE(attention_config_error(32, 8, 128, 24).find("block_size must be a power of two"),
            std::string::npos);
  EXPECT_NE(attention_config_error(32, 8, 128, 64).find("Given: 64"), std::string::npos);
  EXPECT_NE(attention_config_error(7, 2, 128, 16).find("multiple of num_kv_heads"),
            std::string::npos);
  EXPECT_NE(attention_config_error(32, 1, 128, 16).find("<= 16. Given: 32"), std::string::npos);
}

TEST(DecodePlan, SplitsEveryPartitionOf512Tokens) {
  EXPECT_EQ(decode_splits_for(0), 0);
  EXPECT_EQ(decode_splits_for(1), 1);
  EXPECT_EQ(decode_splits_for(512), 1);
  EXPECT_EQ(decode_splits_for(513), 2);
  EXPECT_EQ(decode_splits_for(989), 2);
  EXPECT_EQ(decode_splits_for(32768), 64);
}

TEST(DecodePlan, GridAndWorkspaceForNineteenSequences) {
  // 19 sequences, 32 query heads over 8 KV heads, head_dim 128, longest context 989.
  const DecodePlan plan = plan_decode(19, 32, 8, 128, 989);
  EXPECT_EQ(plan.num_splits, 2);
  EXPECT_EQ(plan.grid_x, 19);
  EXPECT_EQ(plan.grid_y, 8);
  EXPECT_EQ(plan.threads, 128);
  EXPECT_EQ(plan.reduce_threads, 128);
  EXPECT_EQ(plan.partial_out_floats, 19 * 32 * 2 * 128);  // 155648
  EXPECT_EQ(plan.partial_ml_floats, 19 * 32 * 2 * 2);     // 2432
  EXPECT_EQ(plan.workspace_bytes, 622592 + 9728);         // both already 256-aligned
}

TEST(DecodePlan, OneShortSequenceAndNone) {
  const DecodePlan one = plan_decode(1, 8, 2, 64, 1);
  EXPECT_EQ(one.num_splits, 1);
  EXPECT_EQ(one.partial_out_floats, 8 * 64);
  EXPECT_EQ(one.partial_ml_floats, 16);
  EXPECT_EQ(one.workspace_bytes, 2048 + 256);  // 64 bytes of (m, l) round up to 256
  const DecodePlan none = plan_decode(0, 8, 2, 64, 0);
  EXPECT_EQ(none.num_splits, 0);
  EXPECT_EQ(none.workspace_bytes, 0);
}

TEST(PrefillPlan, TilesQueriesByGroupAndOrdersLongestFirst) {
  // Group 4 (32 / 8): 16 rows per block = 4 queries per tile.
  const std::vector<AttentionSequence> seqs = {
      {.query_start = 0, .num_queries = 19, .context_len = 19},     // 5 tiles
      {.query_start = 19, .num_queries = 1, .context_len = 111},    // a decode token
      {.query_start = 20, .num_queries = 111, .context_len = 989},  // 28 tiles
      {.query_start = 131, .num_queries = 0, .context_len = 5},     // nothing to do
  };
  const PrefillPlan plan = plan_prefill(seqs, 32, 8);
  EXPECT_EQ(plan.tile_queries, 4);
  ASSERT_EQ(plan.items.size(), 5u + 1u + 28u);
  EXPECT_EQ(plan.grid_x, 34);
  EXPECT_EQ(plan.grid_y, 8);
  // First: sequence 2's last tile, queries 108..110 at positions 986..988.
  EXPECT_EQ(plan.items[0].seq, 2);
  EXPECT_EQ(plan.items[0].q_begin, 108);
  EXPECT_EQ(plan.items[0].q_end, 111);
  EXPECT_EQ(plan.items[0].kv_len, 989);
  EXPECT_EQ(plan.items[1].kv_len, 878 + 108);  // the tile before: queries 104..107
  // Sequence 1's decode token sees all 111 positions; sequence 0's tiles come last.
  EXPECT_EQ(plan.items[28].seq, 1);
  EXPECT_EQ(plan.items[28].kv_len, 111);
  EXPECT_EQ(plan.items[29].seq, 0);
  EXPECT_EQ(plan.items[29].q_begin, 16);
  EXPECT_EQ(plan.items[29].q_end, 19);
  EXPECT_EQ(plan.items[29].kv_len, 19);
  EXPECT_EQ(plan.items[33].kv_len, 4);
  for (size_t i = 1; i < plan.items.size(); ++i) {
    EXPECT_GE(plan.items[i - 1].kv_len, plan.items[i].kv_len);
  }
}

TEST(PrefillPlan, TileSizeFollowsTheGroup) {
  const std::vector<AttentionSequence> seqs = {{.num_queries = 989, .context_len = 989}};
  EXPECT_EQ(plan_prefill(seqs, 16, 16).tile_queries, 16);  // MHA: 62 tiles
  EXPECT_EQ(plan_prefill(seqs, 16, 16).items.size(), 62u);
  EXPECT_EQ(plan_prefill(seqs, 16, 1).tile_queries, 1);    // group 16: one query per tile
  EXPECT_EQ(plan_prefill(seqs, 16, 1).items.size(), 989u);
  EXPECT_EQ(plan_prefill(seqs, 24, 8).tile_queries, 5);    // group 3: 15 of 16 rows used
}

TEST(RowPlan, ThreadsCoverTheRowUpTo1024) {
  EXPECT_EQ(plan_rows(989, 4096).threads, 1024);
  EXPECT_EQ(plan_rows(989, 4096).blocks, 989);
  EXPECT_EQ(plan_rows(1, 64).threads, 32);
  EXPECT_EQ(plan_rows(19, 1000).threads, 256);  // 256 · 4 >= 1000 > 128 · 4
  EXPECT_EQ(plan_rows(111, 100000).threads, 1024);
  EXPECT_EQ(plan_rows(19, 4096, 2, 256).threads, 256);
  EXPECT_EQ(plan_rows(111, 0).threads, 32);
  EXPECT_EQ(plan_flat_blocks(0, 256), 0);
  EXPECT_EQ(plan_flat_blocks(1, 256), 1);
  EXPECT_EQ(plan_flat_blocks(257, 256), 2);
  EXPECT_EQ(plan_flat_blocks(989 * 11008, 256), 42527);
}

TEST(GemmPlan, ScratchForConvertedActivations) {
  EXPECT_EQ(gemm_scratch_bytes(DType::kF32, 989, 4096), 0);
  EXPECT_EQ(gemm_scratch_bytes(DType::kBF16, 111, 4096), 111 * 4096 * 2);
  EXPECT_EQ(gemm_scratch_bytes(DType::kF16, 19, 19), 768);  // 722 rounded up to 256
}

TEST(GraphBuckets, PowersOfTwoThenEveryEightUpToTheMaximum) {
  EXPECT_EQ(plan_graph_buckets(0), std::vector<int>{});
  EXPECT_EQ(plan_graph_buckets(1), (std::vector<int>{1}));
  EXPECT_EQ(plan_graph_buckets(3), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(plan_graph_buckets(8), (std::vector<int>{1, 2, 4, 8}));
  EXPECT_EQ(plan_graph_buckets(20), (std::vector<int>{1, 2, 4, 8, 16, 20}));
  EXPECT_EQ(plan_graph_buckets(256).size(), 3u + 32u);
  const std::vector<int> b = plan_graph_buckets(20);
  EXPECT_EQ(graph_bucket_for(b, 1), 1);
  EXPECT_EQ(graph_bucket_for(b, 5), 8);
  EXPECT_EQ(graph_bucket_for(b, 17), 20);
  EXPECT_EQ(graph_bucket_for(b, 21), std::nullopt);
  EXPECT_EQ(graph_bucket_for(b, 0), std::nullopt);
}

TEST(DeviceMemoryPlan, KvPoolIsWhatTheBudgetLeaves) {
  constexpr int64_t kGiB = int64_t{1} << 30;
  // 80 GiB at 0.9 = 72 GiB; weights 16 + activations 4 leave 52 GiB; a block of 16 tokens
  // × 32 layers × 8 KV heads × 128 dims × 4 bytes × (K, V) is 4 MiB: 13312 blocks.
  const auto plan = plan_device_memory({.total_bytes = 80 * kGiB,
                                        .gpu_memory_fraction = 0.9,
                                        .weights_bytes = 16 * kGiB,
                                        .activation_bytes = 4 * kGiB,
                                        .kv_block_bytes = 2 * 32 * 8 * 16 * 128 * 4});
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  EXPECT_EQ(plan->budget_bytes, 72 * kGiB);
  EXPECT_EQ(plan->num_kv_blocks, 13312);
  EXPECT_EQ(plan->kv_bytes, 52 * kGiB);

  const auto too_small = plan_device_memory({.total_bytes = 80 * kGiB,
                                             .gpu_memory_fraction = 0.2,
                                             .weights_bytes = 16 * kGiB,
                                             .activation_bytes = 4 * kGiB,
                                             .kv_block_bytes = 4 << 20});
  ASSERT_FALSE(too_small.ok());
  EXPECT_EQ(too_small.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(too_small.status().message().find("Raise gpu_memory_fraction"), std::string::npos);

  const auto bad = plan_device_memory({.total_bytes = kGiB, .gpu_memory_fraction = 0.0,
                                       .kv_block_bytes = 1});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

// cuBLASLt's int8 "TN" rules, for TinyLlama's qkv projection at decode and a few misses.
TEST(W8A8Plan, CuBlasLtTakesMultiplesOfFourAndNamesTheBadField) {
  alignas(16) static int8_t x[64], w[64];
  GemmW8A8Params p{.x = x, .ldx = 2048, .w = w, .m = 1, .n = 2560, .k = 2048};
  EXPECT_EQ(w8a8_cublaslt_error(p), "");
  p.m = 989;  // any m
  EXPECT_EQ(w8a8_cublaslt_error(p), "");
  p.n = 19;
  EXPECT_EQ(w8a8_cublaslt_error(p),
            "CUDA gemm_w8a8 per channel (cuBLASLt int8): k, n and ldx must be multiples of 4. "
            "Given: k=2048 n=19 ldx=2048");
  p.n = 2560;
  p.ldx = 2050;
  EXPECT_NE(w8a8_cublaslt_error(p).find("ldx=2050"), std::string::npos);
  p.ldx = 2048;
  p.x = x + 2;
  EXPECT_NE(w8a8_cublaslt_error(p).find("4-byte aligned. Given: x % 4 = 2, w % 4 = 0"),
            std::string::npos);
}

TEST(W8A8Plan, WorkspaceHoldsTheProductsThenCuBlasLtsOwn) {
  EXPECT_EQ(w8a8_lt_workspace_offset(19, 96), 7424);  // 19 · 96 · 4 = 7296, to 256
  EXPECT_EQ(w8a8_workspace_bytes(19, 96, 136, 0), 7424 + kW8A8LtWorkspaceBytes);
  EXPECT_EQ(w8a8_workspace_bytes(1, 2560, 2048, 0), 10240 + kW8A8LtWorkspaceBytes);
  EXPECT_EQ(w8a8_workspace_bytes(989, 111, 172, 32), 256);
  EXPECT_EQ(plan_w8a8_direct_blocks(19, 111), 264);  // 2109 outputs, 8 warps a block
  EXPECT_EQ(plan_w8a8_direct_blocks(1, 8), 1);
  EXPECT_EQ(plan_w8a8_direct_blocks(0, 111), 0);
}

TEST(W4A16Plan, DecodeRowsTakeTheGemvWithOnlyTheActivationsInTheWorkspace) {
  for (int64_t m : {1, 3, 8}) {
    const W4A16Plan plan = plan_gemm_w4a16(m, 989, 2048);
    EXPECT_TRUE(plan.gemv) << m;
    EXPECT_EQ(plan.blocks, 495);  // 989 rows, 2 per block
    EXPECT_EQ(plan.threads, 128);
    EXPECT_EQ(plan.workspace_bytes, m * 2048 * 2);
    EXPECT_EQ(gemm_w4a16_workspace_bytes(m, 2048), plan.workspace_bytes);
  }
  EXPECT_EQ(plan_gemm_w4a16(1, 19, 96).workspace_bytes, 256);  // 192 bytes round up
}

TEST(W4A16Plan, LargerBatchesDequantizeFixedSlicesWhateverN) {
  const W4A16Plan small_n = plan_gemm_w4a16(19, 111, 2048);
  EXPECT_FALSE(small_n.gemv);
  EXPECT_EQ(small_n.slice_rows, 111);
  const W4A16Plan big_n = plan_gemm_w4a16(19, 11264, 2048);
  EXPECT_EQ(big_n.slice_rows, 1024);
  // x in bf16 (19·2048·2 = 77824, 256-aligned), then hi and lo of 1024 rows each.
  for (const W4A16Plan& plan : {small_n, big_n}) {
    EXPECT_EQ(plan.hi_offset, 77824);
    EXPECT_EQ(plan.lo_offset, 77824 + 1024 * 2048 * 2);
    EXPECT_EQ(plan.workspace_bytes, 77824 + 2 * 1024 * 2048 * 2);
  }
  EXPECT_EQ(gemm_w4a16_workspace_bytes(19, 2048), big_n.workspace_bytes);
}

}  // namespace
}  // namespace strata::kernels::cuda
