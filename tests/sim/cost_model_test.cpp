// The cost-model fit against planted coefficients, and the roofline coefficients against
// a hand computation.
#include "tools/sim/cost_model.h"

#include <fstream>
#include <random>

#include <gtest/gtest.h>

namespace strata::sim {
namespace {

std::vector<StepSample> synthetic(const CostModel& truth, double noise, int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> prefill(0, 512), decode(0, 64), ctx_per_seq(1, 900);
  std::normal_distribution<double> jitter(0.0, noise);
  std::vector<StepSample> out;
  for (int i = 0; i < n; ++i) {
    StepShape s{.prefill_tokens = i % 3 == 0 ? 0 : prefill(rng), .decode_sequences = i % 5 == 0 ? 0 : decode(rng)};
    s.context_tokens = s.decode_sequences * ctx_per_seq(rng) + s.prefill_tokens;
    out.push_back({.shape = s, .seconds = truth.step_seconds(s) * (1 + jitter(rng))});
  }
  return out;
}

TEST(CostModelFit, RecoversPlantedCoefficientsExactlyWithoutNoise) {
  const CostModel truth{.a = 4e-3, .b = 3e-4, .c = 5e-4, .d = 2e-6};
  auto fit = fit_cost_model(synthetic(truth, 0, 200, 1));
  ASSERT_TRUE(fit.ok()) << fit.status().message();
  EXPECT_NEAR(fit->model.a, truth.a, 1e-9);
  EXPECT_NEAR(fit->model.b, truth.b, 1e-11);
  EXPECT_NEAR(fit->model.c, truth.c, 1e-10);
  EXPECT_NEAR(fit->model.d, truth.d, 1e-12);
  EXPECT_NEAR(fit->r_squared, 1.0, 1e-9);
}

TEST(CostModelFit, StaysCloseUnderNoiseAndNeverGoesNegative) {
  const CostModel truth{.a = 4e-3, .b = 3e-4, .c = 0, .d = 2e-6};
  auto fit = fit_cost_model(synthetic(truth, 0.03, 2000, 2));
  ASSERT_TRUE(fit.ok()) << fit.status().message();
  EXPECT_NEAR(fit->model.a, truth.a, 0.1 * truth.a);
  EXPECT_NEAR(fit->model.b, truth.b, 0.05 * truth.b);
  EXPECT_NEAR(fit->model.d, truth.d, 0.1 * truth.d);
  EXPECT_GE(fit->model.c, 0.0);
  EXPECT_LT(fit->model.c, 5e-5);
  EXPECT_LT(fit->mean_abs_relative_error, 0.05);
}

TEST(CostModelFit, RefusesProfilesThatCannotSeparateTheTerms) {
  const CostModel truth{.a = 1e-3, .b = 1e-4, .c = 1e-4, .d = 1e-6};
  EXPECT_FALSE(fit_cost_model(synthetic(truth, 0, 5, 3)).ok());
  std::vector<StepSample> decode_only;
  for (int i = 1; i <= 20; ++i) {
    const StepShape s{.decode_sequences = i, .context_tokens = 100 * i};
    decode_only.push_back({.shape = s, .seconds = truth.step_seconds(s)});
  }
  const auto refused = fit_cost_model(decode_only);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("prefill"), std::string::npos) << refused.status().message();
}

TEST(CostModel, SavesAndLoadsAndNamesBadFields) {
  const std::string path = ::testing::TempDir() + "/cost.json";
  const CostModel m{.a = 1.5e-3, .b = 2e-5, .c = 3e-4, .d = 4e-7, .source = "test"};
  ASSERT_TRUE(save_cost_model(m, path).ok());
  auto back = load_cost_model(path);
  ASSERT_TRUE(back.ok());
  EXPECT_DOUBLE_EQ(back->a, m.a);
  EXPECT_DOUBLE_EQ(back->d, m.d);
  EXPECT_EQ(back->source, "test");
  std::ofstream(path) << R"({"a": 1, "b": -2, "c": 0, "d": 0})";
  auto bad = load_cost_model(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("`b`"), std::string::npos);
  EXPECT_FALSE(load_cost_model(path + ".missing").ok());
}

TEST(CostModel, ReadsAWorkerStepLogAndNamesTheBadLine) {
  const std::string path = ::testing::TempDir() + "/steps.csv";
  std::ofstream(path) << "prefill_tokens,decode_sequences,context_tokens,seconds\n128,3,900,0.05\n0,8,4000,0.012\n";
  auto steps = load_step_csv(path);
  ASSERT_TRUE(steps.ok()) << steps.status().message();
  ASSERT_EQ(steps->size(), 2u);
  EXPECT_EQ((*steps)[0].shape.prefill_tokens, 128);
  EXPECT_EQ((*steps)[1].shape.context_tokens, 4000);
  EXPECT_DOUBLE_EQ((*steps)[1].seconds, 0.012);
  std::ofstream(path) << "prefill_tokens,decode_sequences,context_tokens,seconds\n1,2,3,0.1\n1;2;3;4\n";
  auto bad = load_step_csv(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("steps.csv:3"), std::string::npos) << bad.status().message();
}

TEST(CostModelFit, KeepsStallsWhenAsked) {
  const CostModel truth{.a = 4e-3, .b = 3e-4, .c = 5e-4, .d = 2e-6};
  std::vector<StepSample> samples = synthetic(truth, 0, 400, 5);
  for (size_t i = 0; i < samples.size(); i += 10) samples[i].seconds += 0.05;
  auto kept = fit_cost_model(samples, /*drop_stalls=*/false);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->outliers, 0u);
  EXPECT_GT(kept->model.a, truth.a + 0.002);  // the stalls' mean cost lands in the constant
}

TEST(CostModel, RooflineCoefficientsMatchAHandComputation) {
  bench::HardwareSpec hw{.name = "x", .memory_gb = 80, .memory_bandwidth_gb_per_s = 2000, .peak_tflops_bf16 = 500};
  bench::ModelCosts costs{.weight_bytes = 16e9, .kv_bytes_per_token = 131072, .linear_flops_per_token = 16e9,
                          .attention_flops_per_token_per_context = 4 * 32 * 4096};
  const CostModel m = roofline_cost_model(costs, hw, bench::RooflineDtype::kBf16, /*tp=*/2, /*efficiency=*/0.5);
  // Two GPUs at half speed: 2000 GB/s and 500 TFLOP/s in all.
  EXPECT_DOUBLE_EQ(m.a, 16e9 / 2000e9);
  EXPECT_DOUBLE_EQ(m.b, 16e9 / 500e12);
  EXPECT_DOUBLE_EQ(m.c, 0);
  EXPECT_DOUBLE_EQ(m.d, 131072 / 2000e9 + 4.0 * 32 * 4096 / 500e12);
}

}  // namespace
}  // namespace strata::sim

namespace strata::sim {
namespace {

TEST(CostModelFit, StalledStepsDoNotDragTheFit) {
  const CostModel truth{.a = 4e-3, .b = 3e-4, .c = 5e-4, .d = 2e-6};
  std::vector<StepSample> samples = synthetic(truth, 0.01, 600, 4);
  for (size_t i = 0; i < samples.size(); i += 20) samples[i].seconds += 0.5;  // 5% stalled by 0.5 s
  auto fit = fit_cost_model(samples);
  ASSERT_TRUE(fit.ok());
  // All 30 stalled steps go, and few others (big steps have the largest absolute noise).
  EXPECT_GE(fit->outliers, 30u);
  EXPECT_LE(fit->outliers, 40u);
  EXPECT_NEAR(fit->model.a, truth.a, 0.1 * truth.a);
  EXPECT_NEAR(fit->model.b, truth.b, 0.05 * truth.b);
  EXPECT_NEAR(fit->model.c, truth.c, 0.1 * truth.c);
  EXPECT_NEAR(fit->model.d, truth.d, 0.1 * truth.d);
}

}  // namespace
}  // namespace strata::sim
