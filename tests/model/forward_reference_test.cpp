// The engine's forward pass against the double-precision reference on random models:
// GQA/MQA/MHA, tied and untied classifiers, odd sizes, 300 positions, several KV block
// sizes and prefill chunkings, and block tables that are not in order.
#include <algorithm>
#include <filesystem>
#include <numeric>
#include <random>

#include <gtest/gtest.h>

#include "tests/model/random_llama.h"
#include "worker/model/llama_model.h"
#include "worker/model/model_loader.h"

namespace strata {
namespace {

using testing::RefConfig;

struct ForwardCase {
  const char* name;
  RefConfig config;
  bool tied;
};

// max |a - b| / max |b| over one row of logits.
double relative_error(const float* engine, const std::vector<double>& ref) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    diff = std::max(diff, std::abs(engine[i] - ref[i]));
    scale = std::max(scale, std::abs(ref[i]));
  }
  return diff / scale;
}

class ForwardReferenceTest : public ::testing::TestWithParam<ForwardCase> {};

TEST_P(ForwardReferenceTest, LogitsMatchDoublePrecisionReferenceAtEveryChunking) {
  const ForwardCase& fc = GetParam();
  const auto model = testing::make_random_llama(fc.config, fc.tied, 1234);
  const auto dir = std::filesystem::temp_directory_path() / ("strata_fwd_" + std::string(fc.name));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "model.bin").string();
  testing::write_llama2c(model, path);
  auto loaded = load_model(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  const LoadedModel& m = **loaded;

  const int n = fc.config.seq_len;
  std::mt19937 rng(7);
  std::vector<int> tokens(n);
  for (int& t : tokens) t = static_cast<int>(rng() % fc.config.vocab);
  const auto ref = testing::reference_logits(fc.config, model.weights, tokens);

  for (int block_size : {1, 5, 16, 32}) {
    for (int chunk : {1, 7, 64, n}) {
      LlamaModel forward(m.config, m.weights);
      const int num_blocks = (n + block_size - 1) / block_size;
      KvCache cache(m.config, block_size, num_blocks + 3, DType::kF32);
      // A shuffled block table: positions must be found through it, not by block order.
      std::vector<int32_t> table(num_blocks + 3);
      std::iota(table.begin(), table.end(), 0);
      std::shuffle(table.begin(), table.end(), rng);
      table.resize(num_blocks);
      std::vector<float> logits;
      for (int start = 0; start < n; start += chunk) {
        const int len = std::min(chunk, n - start);
        ForwardBatch batch;
        batch.token_ids.assign(tokens.begin() + start, tokens.begin() + start + len);
        batch.sequences.push_back({.num_computed_tokens = start, .num_new_tokens = len,
                                   .block_table = table, .num_logit_rows = 1});
        forward.forward(batch, cache, logits);
        const int pos = start + len - 1;
        ASSERT_EQ(logits.size(), static_cast<size_t>(fc.config.vocab));
        const double err = relative_error(logits.data(), ref[pos]);
        ASSERT_LT(err, 1e-4) << fc.name << " block_size " << block_size << " chunk " << chunk
                             << " position " << pos;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    RandomConfigs, ForwardReferenceTest,
    ::testing::Values(
        // hidden 72 with 6 heads over 3 KV heads, untied classifier, odd FFN width.
        ForwardCase{"gqa_hidden72_kv3", {72, 172, 2, 6, 3, 97, 300}, false},
        ForwardCase{"mqa_tied", {64, 96, 2, 8, 1, 64, 300}, true},
        ForwardCase{"mha_three_layers", {48, 100, 3, 4, 4, 130, 300}, false},
        ForwardCase{"head_dim_32_gqa4", {128, 200, 1, 4, 1, 50, 300}, true}),
    [](const auto& info) { return std::string(info.param.name); });

// Two sequences in one step give each the logits it gets alone: rows never mix.
TEST(ForwardBatching, TwoSequencesInOneStepMatchEachAlone) {
  const RefConfig c{72, 172, 2, 6, 3, 97, 64};
  const auto model = testing::make_random_llama(c, false, 99);
  const auto path = (std::filesystem::temp_directory_path() / "strata_fwd_batch.bin").string();
  testing::write_llama2c(model, path);
  auto loaded = load_model(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  const LoadedModel& m = **loaded;
  std::vector<int> a(40), b(23);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<int>((i * 31 + 5) % c.vocab);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<int>((i * 17 + 3) % c.vocab);
  const auto ref_a = testing::reference_logits(c, model.weights, a);
  const auto ref_b = testing::reference_logits(c, model.weights, b);

  LlamaModel forward(m.config, m.weights);
  KvCache cache(m.config, 8, 16, DType::kF32);
  const std::vector<int32_t> table_a = {3, 9, 1, 12, 5}, table_b = {0, 14, 7};
  ForwardBatch batch;
  batch.token_ids.insert(batch.token_ids.end(), a.begin(), a.end());
  batch.token_ids.insert(batch.token_ids.end(), b.begin(), b.end());
  batch.sequences.push_back({0, 40, table_a, true});
  batch.sequences.push_back({0, 23, table_b, true});
  std::vector<float> logits;
  forward.forward(batch, cache, logits);
  ASSERT_EQ(logits.size(), 2u * c.vocab);
  EXPECT_LT(relative_error(logits.data(), ref_a[39]), 1e-4);
  EXPECT_LT(relative_error(logits.data() + c.vocab, ref_b[22]), 1e-4);
}

}  // namespace
}  // namespace strata
