// The padded decode path (the inputs a CUDA graph replays: fixed buffers, batches padded to
// a bucket, padding rows on a scratch block) run eagerly on the CPU backend gives every
// real row the same logits, bit for bit, as the unpadded forward, and writes no KV for its
// padding rows. Steps it cannot take (prefill chunks, batches past the largest bucket)
// fall back to the eager layout.
#include <filesystem>
#include <numeric>

#include <gtest/gtest.h>

#include "tests/model/random_llama.h"
#include "worker/model/llama_model.h"
#include "worker/model/model_loader.h"

namespace strata {
namespace {

struct Sequence {
  std::vector<int32_t> table;
  std::vector<int32_t> tokens;  // prompt, then one decode token per step
};

TEST(PaddedDecode, LogitsMatchTheUnpaddedForwardAndPaddingWritesNoKv) {
  const testing::RefConfig c{72, 172, 2, 6, 3, 97, 128};
  const auto model = testing::make_random_llama(c, true, 31);
  const auto path = (std::filesystem::temp_directory_path() / "strata_padded_decode.bin").string();
  testing::write_llama2c(model, path);
  auto loaded = load_model(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  const LoadedModel& m = **loaded;

  const int block_size = 8, num_blocks = 64;
  const int32_t scratch = num_blocks;  // one block past the sequences' blocks
  KvCache cache_eager(m.config, block_size, num_blocks + 1, DType::kF32);
  KvCache cache_padded(m.config, block_size, num_blocks + 1, DType::kF32);
  LlamaModel eager(m.config, m.weights);
  LlamaModel padded(m.config, m.weights);
  ASSERT_TRUE(padded
                  .enable_padded_decode({.buckets = {1, 2, 4, 8},
                                         .max_model_len = c.seq_len,
                                         .scratch_block = scratch,
                                         .max_num_tokens = 64},
                                        cache_padded)
                  .ok());

  // Nine sequences with prompts of 1..33 tokens and shuffled, disjoint block tables.
  std::vector<int32_t> blocks(num_blocks);
  std::iota(blocks.begin(), blocks.end(), 0);
  std::mt19937 rng(3);
  std::shuffle(blocks.begin(), blocks.end(), rng);
  std::vector<Sequence> seqs(9);
  for (size_t s = 0; s < seqs.size(); ++s) {
    seqs[s].table.assign(blocks.begin() + 7 * s, blocks.begin() + 7 * s + 7);
    for (size_t i = 0; i < 1 + 4 * s; ++i) seqs[s].tokens.push_back(static_cast<int32_t>(rng() % c.vocab));
  }

  std::vector<float> want, got;
  auto step_both = [&](const ForwardBatch& batch) {
    eager.forward(batch, cache_eager, want);
    padded.forward(batch, cache_padded, got);
    ASSERT_EQ(want.size(), got.size());
    EXPECT_EQ(want, got);
    EXPECT_FALSE(eager.last_step_padded());
  };
  // Prompts in one mixed step: not decode-only, so both run the eager layout.
  ForwardBatch prefill;
  for (const Sequence& s : seqs) {
    prefill.token_ids.insert(prefill.token_ids.end(), s.tokens.begin(), s.tokens.end());
    prefill.sequences.push_back({0, static_cast<int32_t>(s.tokens.size()), s.table, true});
  }
  step_both(prefill);
  EXPECT_FALSE(padded.last_step_padded());

  // Decode steps of 3 (bucket 4), 1 (bucket 1), 5 and 8 (bucket 8), then all 9 (past the
  // largest bucket: eager).
  for (size_t batch_size : {3, 1, 5, 8, 9, 2}) {
    SCOPED_TRACE(::testing::Message() << "batch " << batch_size);
    ForwardBatch batch;
    for (size_t s = 0; s < batch_size; ++s) {
      Sequence& seq = seqs[(s * 4 + batch_size) % seqs.size()];
      if (std::find_if(batch.sequences.begin(), batch.sequences.end(), [&](const ForwardSequence& f) {
            return f.block_table.data() == seq.table.data();
          }) != batch.sequences.end()) {
        continue;
      }
      const auto token = static_cast<int32_t>(rng() % c.vocab);
      batch.token_ids.push_back(token);
      batch.sequences.push_back({static_cast<int32_t>(seq.tokens.size()), 1, seq.table, true});
      seq.tokens.push_back(token);
    }
    step_both(batch);
    EXPECT_EQ(padded.last_step_padded(), batch.sequences.size() <= 8);
    EXPECT_FALSE(padded.last_step_graphed());  // the CPU captures no graphs
  }

  // Every KV block a sequence owns holds the same bits; padding rows wrote nothing.
  const size_t layer_floats = static_cast<size_t>(num_blocks + 1) * m.config.num_kv_heads *
                              block_size * m.config.head_dim;
  const size_t block_floats = layer_floats / (num_blocks + 1);
  auto floats = [](void* p) { return static_cast<const float*>(p); };
  for (int l = 0; l < m.config.num_layers; ++l) {
    EXPECT_EQ(std::vector<float>(floats(cache_eager.k(l)), floats(cache_eager.k(l)) + layer_floats),
              std::vector<float>(floats(cache_padded.k(l)), floats(cache_padded.k(l)) + layer_floats));
    EXPECT_EQ(std::vector<float>(floats(cache_eager.v(l)), floats(cache_eager.v(l)) + layer_floats),
              std::vector<float>(floats(cache_padded.v(l)), floats(cache_padded.v(l)) + layer_floats));
    const float* scratch_k = floats(cache_padded.k(l)) + scratch * block_floats;
    EXPECT_EQ(std::vector<float>(scratch_k, scratch_k + block_floats),
              std::vector<float>(block_floats, 0.0f));
  }
}

}  // namespace
}  // namespace strata
