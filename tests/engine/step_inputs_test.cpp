// The per-step metadata layouts (worker/model/step_inputs.h) on hand-worked cases: the eager
// layout of a mixed prefill/decode step, and the padded decode layout a CUDA graph reads —
// region offsets, padding rows, and block-table pointers into the device buffer.
#include <cstring>

#include <gtest/gtest.h>

#include "kernels/cuda/plan/graph_buckets.h"
#include "worker/model/llama_model.h"
#include "worker/model/step_inputs.h"

namespace strata {
namespace {

using kernels::AttentionSequence;

TEST(StepInputs, LaysOutAMixedStepAndPointsTablesIntoTheDeviceCopy) {
  // Block size 4. P: a prefill chunk of 4 tokens after 3 cached; D: one decode token after
  // 5 cached; E: 2 prompt tokens whose logits are not wanted yet.
  const std::vector<int32_t> table_p = {7, 2}, table_d = {1, 6}, table_e = {4};
  ForwardBatch batch{.token_ids = {100, 101, 102, 103, 200, 300, 301},
                     .sequences = {{.num_computed_tokens = 3, .num_new_tokens = 4, .block_table = table_p},
                                   {.num_computed_tokens = 5, .num_new_tokens = 1, .block_table = table_d},
                                   {.num_computed_tokens = 0, .num_new_tokens = 2, .block_table = table_e,
                                    .num_logit_rows = 0}}};
  StepInputs in;
  in.build(batch, 4);
  EXPECT_EQ(in.num_tokens(), 7);
  EXPECT_EQ(in.num_logit_rows(), 2);
  const std::vector<int32_t> want = {
      100, 101, 102, 103, 200, 300, 301,  // token ids
      3, 4, 5, 6, 5, 0, 1,                // positions
      31, 8, 9, 10, 25, 16, 17,           // slots: 7·4+3, then block 2 (8..10), 6·4+1, 4·4+0..1
      3, 4,                               // logit rows: P's last token, D's token
      7, 2, 1, 6, 4};                     // block tables P, D, E
  EXPECT_EQ(in.words(), want);
  EXPECT_EQ(in.positions_at(), 7);
  EXPECT_EQ(in.slots_at(), 14);
  EXPECT_EQ(in.logit_rows_at(), 21);

  std::vector<int32_t> device(want.size());
  in.bind(device.data());
  ASSERT_EQ(in.decode_seqs().size(), 1u);
  ASSERT_EQ(in.prefill_seqs().size(), 2u);
  const AttentionSequence& d = in.decode_seqs()[0];
  EXPECT_EQ(d.query_start, 4);
  EXPECT_EQ(d.num_queries, 1);
  EXPECT_EQ(d.context_len, 6);
  EXPECT_EQ(d.block_table, device.data() + 25);
  const AttentionSequence& p = in.prefill_seqs()[0];
  EXPECT_EQ(p.query_start, 0);
  EXPECT_EQ(p.num_queries, 4);
  EXPECT_EQ(p.context_len, 7);
  EXPECT_EQ(p.block_table, device.data() + 23);
  const AttentionSequence& e = in.prefill_seqs()[1];
  EXPECT_EQ(e.query_start, 5);
  EXPECT_EQ(e.context_len, 2);
  EXPECT_EQ(e.block_table, device.data() + 27);
}

TEST(PaddedDecodeLayout, RegionsFollowEachOtherOnSixteenByteBoundaries) {
  static_assert(sizeof(AttentionSequence) == 24);
  // 4 rows, 3 blocks per sequence: 4 · 24 = 96 bytes of sequences, 16-byte columns.
  const PaddedDecodeLayout l = PaddedDecodeLayout::make(4, 3);
  EXPECT_EQ(l.seqs_at, 0);
  EXPECT_EQ(l.token_ids_at, 96);
  EXPECT_EQ(l.positions_at, 112);
  EXPECT_EQ(l.slots_at, 128);
  EXPECT_EQ(l.logit_rows_at, 144);
  EXPECT_EQ(l.tables_at, 160);
  EXPECT_EQ(l.total_bytes, 160 + 4 * 3 * 4);
  EXPECT_EQ(l.bytes_for(2), 160 + 2 * 3 * 4);
  // 3 rows: 72 bytes of sequences round up to 80; 12-byte columns round up to 16.
  const PaddedDecodeLayout m = PaddedDecodeLayout::make(3, 5);
  EXPECT_EQ(m.token_ids_at, 80);
  EXPECT_EQ(m.positions_at, 96);
  EXPECT_EQ(m.tables_at, 144);
  EXPECT_EQ(m.total_bytes, 144 + 3 * 5 * 4);
}

TEST(PaddedDecode, OnlyDecodeOnlyStepsThatFitTheBucketsAndContextRunPadded) {
  const PaddedDecodeLayout l = PaddedDecodeLayout::make(4, 3);  // max_model_len 48, blocks of 16
  const std::vector<int32_t> t1 = {0}, t3 = {0, 1, 2}, t4 = {0, 1, 2, 3};
  auto decode = [](int32_t computed, std::span<const int32_t> table, bool logits = true) {
    return ForwardSequence{.num_computed_tokens = computed, .num_new_tokens = 1,
                           .block_table = table, .num_logit_rows = logits ? 1 : 0};
  };
  EXPECT_TRUE(fits_padded_decode({{1, 2}, {decode(0, t1), decode(47, t3)}}, l, 48));
  EXPECT_FALSE(fits_padded_decode({}, l, 48));                                  // no sequence
  EXPECT_FALSE(fits_padded_decode({{1}, {decode(48, t3)}}, l, 48));             // context 49
  EXPECT_FALSE(fits_padded_decode({{1}, {decode(3, t4)}}, l, 64));              // table too long
  EXPECT_FALSE(fits_padded_decode({{1}, {decode(3, t1, false)}}, l, 48));       // no logits
  EXPECT_FALSE(fits_padded_decode({{1, 2, 3, 4, 5}, std::vector(5, decode(0, t1))}, l, 48));
  EXPECT_FALSE(fits_padded_decode(
      {{1, 2}, {{.num_computed_tokens = 0, .num_new_tokens = 2, .block_table = t1}}}, l, 48));
  // Batch sizes map to buckets 1, 2, 4: a batch of 3 runs as 4 (the step's graph).
  const std::vector<int> buckets = kernels::cuda::plan_graph_buckets(4);
  EXPECT_EQ(buckets, (std::vector<int>{1, 2, 4}));
  EXPECT_EQ(kernels::cuda::graph_bucket_for(buckets, 3), 4);
  EXPECT_EQ(kernels::cuda::graph_bucket_for(buckets, 5), std::nullopt);
}

TEST(PaddedDecode, FillsTheBatchThenPaddingRowsThatReadTheScratchBlock) {
  const PaddedDecodeLayout l = PaddedDecodeLayout::make(4, 3);
  // Block size 16. A: position 17 (block 9, offset 1); B: position 0 of block 3.
  const std::vector<int32_t> table_a = {5, 9}, table_b = {3};
  const ForwardBatch batch{
      .token_ids = {11, 12},
      .sequences = {{.num_computed_tokens = 17, .num_new_tokens = 1, .block_table = table_a},
                    {.num_computed_tokens = 0, .num_new_tokens = 1, .block_table = table_b}}};
  std::vector<unsigned char> staging;
  alignas(16) static unsigned char device[208];
  fill_padded_decode(l, batch, 4, 16, /*scratch_block=*/99, device, staging);
  ASSERT_EQ(staging.size(), 208u);
  auto i32 = [&](int64_t at) {
    int32_t v;
    std::memcpy(&v, staging.data() + at, 4);
    return v;
  };
  auto column = [&](int64_t at) {
    return std::vector<int32_t>{i32(at), i32(at + 4), i32(at + 8), i32(at + 12)};
  };
  EXPECT_EQ(column(l.token_ids_at), (std::vector<int32_t>{11, 12, 0, 0}));
  EXPECT_EQ(column(l.positions_at), (std::vector<int32_t>{17, 0, 0, 0}));
  EXPECT_EQ(column(l.slots_at), (std::vector<int32_t>{145, 48, -1, -1}));
  EXPECT_EQ(column(l.logit_rows_at), (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(i32(l.tables_at), 5);        // row 0: A's table
  EXPECT_EQ(i32(l.tables_at + 4), 9);
  EXPECT_EQ(i32(l.tables_at + 12), 3);   // row 1: B's table
  EXPECT_EQ(i32(l.tables_at + 24), 99);  // rows 2, 3: the scratch block
  EXPECT_EQ(i32(l.tables_at + 36), 99);
  const int want_context[] = {18, 1, 1, 1};
  for (int i = 0; i < 4; ++i) {
    AttentionSequence s;
    std::memcpy(&s, staging.data() + l.seqs_at + i * 24, sizeof s);
    EXPECT_EQ(s.query_start, i);
    EXPECT_EQ(s.num_queries, 1);
    EXPECT_EQ(s.context_len, want_context[i]);
    EXPECT_EQ(s.block_table, reinterpret_cast<const int32_t*>(device + l.tables_at + i * 12));
  }
  // A batch of one padded to bucket 2 rewrites rows 0 and 1 only.
  const ForwardBatch one{.token_ids = {13},
                         .sequences = {{.num_computed_tokens = 1, .num_new_tokens = 1,
                                        .block_table = table_b}}};
  fill_padded_decode(l, one, 2, 16, 99, device, staging);
  EXPECT_EQ(column(l.token_ids_at), (std::vector<int32_t>{13, 0, 0, 0}));
  EXPECT_EQ(column(l.slots_at), (std::vector<int32_t>{49, -1, -1, -1}));
  EXPECT_EQ(i32(l.tables_at + 12), 99);
}

}  // namespace
}  // namespace strata
