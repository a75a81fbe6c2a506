// HF checkpoints (written by the `safetensors` package, logits by a numpy float64 forward
// pass in the test setup) against the engine, and the same weights saved as llama2.c and
// as safetensors giving identical logits.
#include <filesystem>
#include <cstring>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/model/logits_runner.h"
#include "tests/test_support.h"
#include "worker/model/llama_model.h"
#include "worker/model/model_loader.h"

namespace strata {
namespace {

class HfCaseTest : public ::testing::TestWithParam<std::string> {};

TEST_P(HfCaseTest, Fp32LogitsMatchNumpyFloat64Reference) {
  STRATA_REQUIRE_TEST_DATA(dir, "models/" + GetParam());
  std::ifstream in(dir / "expected.json");
  const auto expected = nlohmann::json::parse(in);
  const auto tokens = expected["tokens"].get<std::vector<int32_t>>();
  auto m = load_or_fail(dir);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->format, "hf");
  const RunResult r = run_all_positions(*m, tokens);
  for (size_t pos = 0; pos < tokens.size(); ++pos) {
    ASSERT_EQ(r.per_position[pos].size(), expected["logits"][pos].size());
    EXPECT_LT(relative_error(r.per_position[pos], expected["logits"][pos]), 1e-4) << "position " << pos;
  }
  EXPECT_LT(relative_error(r.prefill_last, expected["logits"].back()), 1e-4);
}

TEST_P(HfCaseTest, ShardedCheckpointGivesIdenticalLogits) {
  STRATA_REQUIRE_TEST_DATA(dir, "models/" + GetParam());
  STRATA_REQUIRE_TEST_DATA(sharded, "models/" + GetParam() + "_sharded");
  std::ifstream in(dir / "expected.json");
  const auto tokens = nlohmann::json::parse(in)["tokens"].get<std::vector<int32_t>>();
  auto a = load_or_fail(dir), b = load_or_fail(sharded);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(run_all_positions(*a, tokens).per_position, run_all_positions(*b, tokens).per_position);
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// bf16 and fp16 files hold the fp32 weights rounded by Python's writers; strata rounding the
// fp32 checkpoint itself must give the same matrix bits (norms differ: a half-precision file
// stores them rounded, while strata keeps norms in fp32), and logits near the reference.
TEST_P(HfCaseTest, HalfPrecisionFilesMatchFp32FileConvertedAtLoad) {
  for (const auto& [suffix, dtype] : {std::pair{"_bf16", DType::kBF16}, std::pair{"_fp16", DType::kF16}}) {
    SCOPED_TRACE(suffix);
    STRATA_REQUIRE_TEST_DATA(dir, "models/" + GetParam());
    STRATA_REQUIRE_TEST_DATA(half, "models/" + GetParam() + suffix);
    std::ifstream in(dir / "expected.json");
    const auto expected = nlohmann::json::parse(in);
    auto tokens = expected["tokens"].get<std::vector<int32_t>>();
    tokens.resize(24);
    auto from_fp32 = load_or_fail(dir, dtype), native = load_or_fail(half);
    ASSERT_TRUE(from_fp32 && native);
    EXPECT_EQ(native->weights.dtype, dtype);
    const ModelWeights &a = from_fp32->weights, &b = native->weights;
    EXPECT_TRUE(same_bits(a.embedding, b.embedding));
    EXPECT_TRUE(same_bits(a.lm_head.data, b.lm_head.data));
    for (size_t l = 0; l < a.layers.size(); ++l) {
      EXPECT_TRUE(same_bits(a.layers[l].wqkv.data, b.layers[l].wqkv.data)) << "layer " << l;
      EXPECT_TRUE(same_bits(a.layers[l].wo.data, b.layers[l].wo.data)) << "layer " << l;
      EXPECT_TRUE(same_bits(a.layers[l].w_gate_up.data, b.layers[l].w_gate_up.data)) << "layer " << l;
      EXPECT_TRUE(same_bits(a.layers[l].w_down.data, b.layers[l].w_down.data)) << "layer " << l;
    }
    // Rounding the weights moves logits, but not far from the float64 reference.
    const auto r = run_all_positions(*native, tokens);
    for (size_t pos = 0; pos < tokens.size(); ++pos) {
      EXPECT_LT(relative_error(r.per_position[pos], expected["logits"][pos]), 5e-2) << "position " << pos;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Checkpoints, HfCaseTest,
                         ::testing::Values("llama_gqa_untied", "qwen2_bias_tied", "llama3_rope_scaling"));

TEST(Llama2cVersusSafetensors, SameWeightsGiveIdenticalLogits) {
  STRATA_REQUIRE_TEST_DATA(hf_dir, "models/llama_gqa_untied");
  STRATA_REQUIRE_TEST_DATA(bin, "models/llama_gqa_untied.bin");
  std::ifstream in(hf_dir / "expected.json");
  const auto tokens = nlohmann::json::parse(in)["tokens"].get<std::vector<int32_t>>();
  auto hf = load_or_fail(hf_dir), l2c = load_or_fail(bin);
  ASSERT_TRUE(hf && l2c);
  EXPECT_EQ(l2c->format, "llama2c");
  const auto a = run_all_positions(*hf, tokens), b = run_all_positions(*l2c, tokens);
  EXPECT_EQ(a.per_position, b.per_position);
  EXPECT_EQ(a.prefill_last, b.prefill_last);
}

}  // namespace
}  // namespace strata
