// Sampler tests against a double-precision reference written here: penalties by the HF and
// OpenAI formulas, softmax in double, filters by an explicit full sort.
#include "worker/engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include <gtest/gtest.h>

// g++ 12 warns on designated initializers that leave fields at their defaults, which is the
// point of using them here.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace strata {
namespace {

// ---- reference -------------------------------------------------------------------------

std::vector<float> ref_penalized(std::vector<float> x, const SamplingParams& p,
                                 const std::vector<int32_t>& prompt,
                                 const std::vector<int32_t>& output) {
  const int32_t vocab = static_cast<int32_t>(x.size());
  std::set<int32_t> seen;
  for (int32_t id : prompt) seen.insert(id);
  for (int32_t id : output) seen.insert(id);
  for (int32_t id : seen) {
    if (id < 0 || id >= vocab || p.repetition_penalty == 1.0f) continue;
    x[id] = x[id] > 0.0f ? x[id] / p.repetition_penalty : x[id] * p.repetition_penalty;
  }
  std::vector<int32_t> count(vocab, 0);
  for (int32_t id : output) {
    if (id >= 0 && id < vocab) ++count[id];
  }
  for (int32_t id = 0; id < vocab; ++id) {
    if (count[id] == 0) continue;
    if (p.frequency_penalty == 0.0f && p.presence_penalty == 0.0f) continue;
    x[id] -= static_cast<float>(count[id]) * p.frequency_penalty + p.presence_penalty;
  }
  return x;
}

// Final distribution over ids (0 for dropped tokens).
std::vector<double> ref_distribution(const std::vector<float>& logits, const SamplingParams& p,
                                     const std::vector<int32_t>& prompt = {},
                                     const std::vector<int32_t>& output = {}) {
  const std::vector<float> x = ref_penalized(logits, p, prompt, output);
  const size_t vocab = x.size();
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return x[a] != x[b] ? x[a] > x[b] : a < b;
  });
  const double x_max = x[order[0]];
  std::vector<double> prob(vocab, 0.0);
  for (size_t i = 0; i < vocab; ++i) prob[i] = std::exp((x[i] - x_max) / p.temperature);
  std::vector<bool> keep(vocab, true);
  auto renormalize = [&] {
    double sum = 0.0;
    for (size_t i = 0; i < vocab; ++i) sum += keep[i] ? prob[i] : 0.0;
    for (size_t i = 0; i < vocab; ++i) prob[i] = keep[i] ? prob[i] / sum : 0.0;
  };
  renormalize();
  if (p.top_k > 0) {
    for (size_t r = static_cast<size_t>(p.top_k); r < vocab; ++r) keep[order[r]] = false;
    renormalize();
  }
  if (p.top_p < 1.0f) {
    double cum = 0.0;
    size_t r = 0;
    for (; r < vocab && keep[order[r]]; ++r) {
      cum += prob[order[r]];
      if (cum >= p.top_p) break;
    }
    for (size_t s = r + 1; s < vocab; ++s) keep[order[s]] = false;
    renormalize();
  }
  if (p.min_p > 0.0f) {
    const double cut = p.min_p * prob[order[0]];
    for (size_t i = 0; i < vocab; ++i) {
      if (prob[i] < cut) keep[i] = false;
    }
    renormalize();
  }
  return prob;
}

std::vector<double> ref_log_softmax(const std::vector<float>& x) {
  double m = *std::max_element(x.begin(), x.end());
  double s = 0.0;
  for (float v : x) s += std::exp(v - m);
  std::vector<double> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = x[i] - m - std::log(s);
  return out;
}

std::vector<float> random_logits(std::mt19937_64& gen, size_t vocab, float scale) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> x(vocab);
  for (float& v : x) v = normal(gen);
  return x;
}

SampledToken sample(const std::vector<float>& logits, const SamplingParams& p, SamplerRng& rng,
                    const std::vector<int32_t>& prompt = {},
                    const std::vector<int32_t>& output = {}) {
  // One workspace for every call of the file, as a runner reuses its own: a call that left
  // state behind would change a later test's result.
  static SamplerWorkspace workspace;
  return sample_token(logits, p, prompt, output, rng, workspace);
}

// ---- validation ------------------------------------------------------------------------

void expect_rejected(const SamplingParams& p, const std::string& field, const std::string& value) {
  Status s = p.validate();
  ASSERT_FALSE(s.ok()) << field;
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("`" + field), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("Given: " + value), std::string::npos) << s.message();
}

TEST(SamplingParamsValidate, AcceptsDefaultsAndEdges) {
  EXPECT_TRUE(SamplingParams{}.validate().ok());
  SamplingParams p{.temperature = 0.0f, .top_k = -1, .top_p = 1.0f, .min_p = 1.0f,
                   .repetition_penalty = 2.0f, .presence_penalty = -2.0f,
                   .frequency_penalty = 2.0f, .max_tokens = 1, .stop_token_ids = {0, 7},
                   .logprobs = 20};
  EXPECT_TRUE(p.validate().ok()) << p.validate().message();
  p.temperature = 100.0f;
  p.logprobs = -1;
  EXPECT_TRUE(p.validate().ok());
}

TEST(SamplingParamsValidate, RejectsEachOutOfRangeFieldNamingFieldAndValue) {
  auto with = [](auto mutate) {
    SamplingParams p;
    mutate(p);
    return p;
  };
  expect_rejected(with([](auto& p) { p.temperature = -0.5f; }), "temperature", "-0.5");
  expect_rejected(with([](auto& p) { p.temperature = 101.0f; }), "temperature", "101");
  expect_rejected(with([](auto& p) { p.temperature = NAN; }), "temperature", "nan");
  expect_rejected(with([](auto& p) { p.temperature = INFINITY; }), "temperature", "inf");
  expect_rejected(with([](auto& p) { p.top_k = -2; }), "top_k", "-2");
  expect_rejected(with([](auto& p) { p.top_p = 1.5f; }), "top_p", "1.5");
  expect_rejected(with([](auto& p) { p.top_p = 0.0f; }), "top_p", "0");
  expect_rejected(with([](auto& p) { p.top_p = NAN; }), "top_p", "nan");
  expect_rejected(with([](auto& p) { p.min_p = -0.25f; }), "min_p", "-0.25");
  expect_rejected(with([](auto& p) { p.min_p = 1.25f; }), "min_p", "1.25");
  expect_rejected(with([](auto& p) { p.repetition_penalty = 0.0f; }), "repetition_penalty",
                  "0");
  expect_rejected(with([](auto& p) { p.repetition_penalty = 2.5f; }), "repetition_penalty",
                  "2.5");
  expect_rejected(with([](auto& p) { p.presence_penalty = -3.0f; }), "presence_penalty", "-3");
  expect_rejected(with([](auto& p) { p.presence_penalty = 2.5f; }), "presence_penalty", "2.5");
  expect_rejected(with([](auto& p) { p.frequency_penalty = 2.25f; }), "frequency_penalty",
                  "2.25");
  expect_rejected(with([](auto& p) { p.frequency_penalty = -2.25f; }), "frequency_penalty",
                  "-2.25");
  expect_rejected(with([](auto& p) { p.max_tokens = 0; }), "max_tokens", "0");
  expect_rejected(with([](auto& p) { p.logprobs = 21; }), "logprobs", "21");
  expect_rejected(with([](auto& p) { p.logprobs = -2; }), "logprobs", "-2");
  expect_rejected(with([](auto& p) { p.stop_token_ids = {3, -5}; }), "stop_token_ids[1]", "-5");
}

// ---- rng -------------------------------------------------------------------------------

TEST(SamplerRng, SameSeedSameStreamDifferentSeedsDiffer) {
  SamplerRng a(42), b(42), c(43);
  int same_as_c = 0;
  for (int i = 0; i < 1000; ++i) {
    const uint64_t va = a.next_u64();
    EXPECT_EQ(va, b.next_u64());
    same_as_c += va == c.next_u64();
  }
  EXPECT_EQ(same_as_c, 0);
}

TEST(SamplerRng, NextDoubleIsUniformInUnitInterval) {
  SamplerRng rng(7);
  double sum = 0.0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const double u = rng.next_double();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / n, 0.5, 0.005);
}

// ---- greedy ----------------------------------------------------------------------------

TEST(SampleGreedy, PicksArgmaxWithLowestIdOnTies) {
  SamplerRng rng(1);
  SamplingParams p{.temperature = 0.0f};
  EXPECT_EQ(sample({1.0f, 3.0f, 3.0f, 2.0f}, p, rng).id, 1);
  EXPECT_EQ(sample({5.0f, 5.0f}, p, rng).id, 0);
  EXPECT_EQ(sample({-INFINITY, -1.0f, NAN, -1.0f}, p, rng).id, 1);
  std::mt19937_64 gen(3);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> x = random_logits(gen, 1 + trial * 37, 2.0f);
    const auto expected = std::max_element(x.begin(), x.end()) - x.begin();
    EXPECT_EQ(sample(x, p, rng).id, expected);
  }
}

TEST(SampleGreedy, DrawsNothingFromTheRng) {
  SamplerRng used(9), fresh(9);
  SamplingParams p{.temperature = 0.0f};
  sample({0.0f, 1.0f}, p, used);
  EXPECT_EQ(used.next_u64(), fresh.next_u64());
}

TEST(SampleGreedy, AppliesPenaltiesBeforeArgmax) {
  SamplerRng rng(1);
  SamplingParams p{.temperature = 0.0f, .repetition_penalty = 2.0f};
  // 4/2 = 2 < 3: the repeated token loses its lead.
  EXPECT_EQ(sample({4.0f, 3.0f, 0.0f}, p, rng, {0}, {}).id, 1);
  SamplingParams q{.temperature = 0.0f, .presence_penalty = 1.5f};
  EXPECT_EQ(sample({4.0f, 3.0f, 0.0f}, q, rng, {}, {0}).id, 1);
  EXPECT_EQ(sample({4.0f, 3.0f, 0.0f}, q, rng, {0}, {}).id, 0);  // prompt: no presence
}

// ---- penalties -------------------------------------------------------------------------

TEST(ApplyPenalties, MatchesHfAndOpenAiFormulasExactly) {
  std::vector<float> x = {2.0f, -2.0f, 0.5f, 1.0f, 3.0f, -0.75f};
  SamplingParams p{.repetition_penalty = 1.5f, .presence_penalty = 0.5f,
                   .frequency_penalty = 0.25f};
  const std::vector<int32_t> prompt = {0, 1, 1, -4, 99};  // out-of-range ids are ignored
  const std::vector<int32_t> output = {2, 2, 3, 5, 2, 1000};
  SamplerWorkspace workspace;
  apply_penalties(x, p, prompt, output, workspace);
  const float r = 1.5f;
  EXPECT_EQ(x[0], 2.0f / r);
  EXPECT_EQ(x[1], -2.0f * r);  // seen twice in the prompt: penalized once
  EXPECT_EQ(x[2], 0.5f / r - (3.0f * 0.25f + 0.5f));
  EXPECT_EQ(x[3], 1.0f / r - (1.0f * 0.25f + 0.5f));
  EXPECT_EQ(x[4], 3.0f);
  EXPECT_EQ(x[5], -0.75f * r - (1.0f * 0.25f + 0.5f));
}

TEST(ApplyPenalties, MatchesReferenceOnRandomHistoriesAndLeavesNoState) {
  std::mt19937_64 gen(11);
  std::uniform_real_distribution<float> rep(0.1f, 2.0f), pen(-2.0f, 2.0f);
  SamplerWorkspace workspace;  // shared by the trials: each must leave it clean
  for (int trial = 0; trial < 100; ++trial) {
    const size_t vocab = 50 + trial;
    std::vector<float> x = random_logits(gen, vocab, 3.0f);
    std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(vocab) - 1);
    std::vector<int32_t> prompt(trial % 17), output(trial % 23);
    for (auto& t : prompt) t = id(gen);
    for (auto& t : output) t = id(gen);
    SamplingParams p{.repetition_penalty = rep(gen), .presence_penalty = pen(gen),
                     .frequency_penalty = pen(gen)};
    const std::vector<float> expected = ref_penalized(x, p, prompt, output);
    apply_penalties(x, p, prompt, output, workspace);
    ASSERT_EQ(x, expected) << "trial " << trial;
  }
}

// ---- filtering and drawing -------------------------------------------------------------

struct FilterCase {
  SamplingParams params;
  const char* name;
};

std::vector<FilterCase> filter_cases() {
  return {
      {{.temperature = 1.0f, .top_k = 5}, "top_k=5"},
      {{.temperature = 0.7f, .top_k = 1}, "top_k=1"},
      {{.temperature = 1.0f, .top_p = 0.5f}, "top_p=0.5"},
      {{.temperature = 1.3f, .top_p = 0.9f}, "top_p=0.9"},
      {{.temperature = 1.0f, .min_p = 0.1f}, "min_p=0.1"},
      {{.temperature = 0.5f, .top_k = 20, .top_p = 0.8f, .min_p = 0.05f}, "all three"},
      {{.temperature = 2.0f, .top_k = -1, .top_p = 0.95f, .min_p = 0.2f}, "top_p+min_p"},
      {{.temperature = 1.0f, .top_k = 10, .repetition_penalty = 1.3f, .presence_penalty = 0.4f,
        .frequency_penalty = 0.3f},
       "top_k with penalties"},
  };
}

TEST(SampleFiltering, SampledTokensLieInReferenceSetAndCoverItsLikelyTokens) {
  std::mt19937_64 gen(5);
  SamplerRng rng(1234);
  for (const FilterCase& c : filter_cases()) {
    for (int trial = 0; trial < 40; ++trial) {
      const size_t vocab = 20 + 53 * trial;
      const std::vector<float> x = random_logits(gen, vocab, 2.5f);
      const std::vector<int32_t> prompt = {1, 2, 3, 3}, output = {0, 3, 3, 7};
      const std::vector<double> ref = ref_distribution(x, c.params, prompt, output);
      std::vector<int> hits(vocab, 0);
      for (int draw = 0; draw < 400; ++draw) {
        const int32_t id = sample(x, c.params, rng, prompt, output).id;
        ASSERT_GT(ref[id], 0.0) << c.name << " trial " << trial << ": sampled dropped token "
                                << id;
        ++hits[id];
      }
      for (size_t id = 0; id < vocab; ++id) {
        if (ref[id] > 0.05) {
          EXPECT_GT(hits[id], 0) << c.name << " trial " << trial << ": token " << id
                                 << " with p=" << ref[id] << " never drawn";
        }
      }
    }
  }
}

// Total-variation distance and chi-square of 200k draws against the reference.
TEST(SampleFiltering, EmpiricalFrequenciesMatchReferenceDistribution) {
  std::mt19937_64 gen(77);
  for (const FilterCase& c : filter_cases()) {
    const std::vector<float> x = random_logits(gen, 300, 1.5f);
    const std::vector<double> ref = ref_distribution(x, c.params);
    SamplerRng rng(2024);
    const int n = 200000;
    std::vector<int> hits(x.size(), 0);
    for (int i = 0; i < n; ++i) ++hits[sample(x, c.params, rng).id];
    double tv = 0.0, chi2 = 0.0;
    int df = -1;
    for (size_t id = 0; id < x.size(); ++id) {
      tv += std::abs(hits[id] / static_cast<double>(n) - ref[id]);
      if (ref[id] > 0.0) {
        const double expected = n * ref[id];
        chi2 += (hits[id] - expected) * (hits[id] - expected) / expected;
        ++df;
      } else {
        ASSERT_EQ(hits[id], 0) << c.name;
      }
    }
    tv /= 2.0;
    EXPECT_LT(tv, 0.02) << c.name;
    if (df > 0) {
      // Mean df, sd sqrt(2 df): six standard deviations is a generous deterministic bound.
      EXPECT_LT(chi2, df + 6.0 * std::sqrt(2.0 * df)) << c.name << " df=" << df;
    }
  }
}

TEST(SampleFiltering, PlainTemperatureOverLargeVocabularyMatchesReference) {
  std::mt19937_64 gen(8);
  const std::vector<float> x = random_logits(gen, 32000, 4.0f);
  SamplingParams p{.temperature = 0.8f};
  const std::vector<double> ref = ref_distribution(x, p);
  SamplerRng rng(5);
  const int n = 20000;
  std::vector<int> hits(x.size(), 0);
  for (int i = 0; i < n; ++i) ++hits[sample(x, p, rng).id];
  // Compare the mass on the reference's 20 most likely tokens, and the rest together.
  std::vector<int32_t> order(x.size());
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + 20, order.end(),
                    [&](int32_t a, int32_t b) { return ref[a] > ref[b]; });
  double tv = 0.0, head_ref = 0.0, head_hits = 0.0;
  for (int r = 0; r < 20; ++r) {
    tv += std::abs(hits[order[r]] / static_cast<double>(n) - ref[order[r]]);
    head_ref += ref[order[r]];
    head_hits += hits[order[r]];
  }
  tv += std::abs((n - head_hits) / n - (1.0 - head_ref));
  EXPECT_LT(tv / 2.0, 0.02);
}

TEST(SampleFiltering, TopPAlwaysKeepsAtLeastOneToken) {
  SamplerRng rng(3);
  SamplingParams p{.temperature = 1.0f, .top_p = 1e-6f};
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sample({0.0f, 5.0f, 1.0f, 5.0f}, p, rng).id, 1);
}

TEST(SampleFiltering, TopKOfOneIsGreedy) {
  std::mt19937_64 gen(4);
  SamplerRng rng(3);
  SamplingParams p{.temperature = 1.0f, .top_k = 1};
  for (int i = 0; i < 50; ++i) {
    std::vector<float> x = random_logits(gen, 1000, 1.0f);
    EXPECT_EQ(sample(x, p, rng).id, std::max_element(x.begin(), x.end()) - x.begin());
  }
}

TEST(SampleFiltering, NeverPicksMaskedTokens) {
  SamplerRng rng(3);
  SamplingParams p{.temperature = 1.0f};
  std::vector<float> x(1000, -INFINITY);
  x[17] = 0.0f;
  x[900] = 0.0f;
  for (int i = 0; i < 200; ++i) {
    const int32_t id = sample(x, p, rng).id;
    EXPECT_TRUE(id == 17 || id == 900) << id;
  }
}

// ---- determinism -----------------------------------------------------------------------

TEST(SampleDeterminism, SameSeedSameTokensDifferentSeedsDiffer) {
  std::mt19937_64 gen(6);
  const std::vector<float> x = random_logits(gen, 5000, 1.0f);
  SamplingParams p{.temperature = 1.0f, .top_p = 0.95f};
  auto run = [&](uint64_t seed) {
    SamplerRng rng(seed);
    std::vector<int32_t> out;
    for (int i = 0; i < 200; ++i) out.push_back(sample(x, p, rng).id);
    return out;
  };
  EXPECT_EQ(run(1), run(1));
  EXPECT_NE(run(1), run(2));
}

// ---- logprobs --------------------------------------------------------------------------

TEST(SampleLogprobs, MatchDoubleLogSoftmaxOfRawLogits) {
  std::mt19937_64 gen(10);
  SamplerRng rng(1);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<float> x = random_logits(gen, 100 + 997 * trial, 3.0f);
    for (float& v : x) v += 1000.0f;  // needs the max shift
    x[trial % 7] = x[trial % 7 + 1];  // a tie
    SamplingParams p{.temperature = 0.7f, .top_k = 40, .repetition_penalty = 1.7f,
                     .frequency_penalty = 1.0f, .logprobs = trial % 21};
    const std::vector<double> ref = ref_log_softmax(x);
    const SampledToken t = sample(x, p, rng, {1, 2, 3}, {4, 4});
    EXPECT_NEAR(t.logprob, ref[t.id], 1e-5);
    std::vector<int32_t> order(x.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return x[a] > x[b]; });
    ASSERT_EQ(t.top_logprobs.size(), static_cast<size_t>(p.logprobs));
    for (size_t r = 0; r < t.top_logprobs.size(); ++r) {
      EXPECT_EQ(t.top_logprobs[r].id, order[r]) << "rank " << r;
      EXPECT_NEAR(t.top_logprobs[r].logprob, ref[order[r]], 1e-5);
    }
  }
}

TEST(SampleLogprobs, NoneRequestedLeavesThemEmpty) {
  SamplerRng rng(1);
  SampledToken t = sample({1.0f, 2.0f}, SamplingParams{.logprobs = -1}, rng);
  EXPECT_TRUE(t.top_logprobs.empty());
  t = sample({1.0f, 2.0f}, SamplingParams{.temperature = 0.0f, .logprobs = 0}, rng);
  EXPECT_EQ(t.id, 1);
  EXPECT_NEAR(t.logprob, -std::log1p(std::exp(-1.0)), 1e-6);
  EXPECT_TRUE(t.top_logprobs.empty());
}

TEST(SampleLargeVocab, TopKOnA128kVocabularyStaysInTheTopK) {
  std::mt19937_64 gen(12);
  const std::vector<float> x = random_logits(gen, 128256, 2.0f);
  std::vector<float> sorted = x;
  std::sort(sorted.begin(), sorted.end(), std::greater<>());
  SamplerRng rng(1);
  SamplingParams p{.temperature = 1.0f, .top_k = 50, .top_p = 0.9f, .logprobs = 5};
  for (int i = 0; i < 200; ++i) {
    const SampledToken t = sample(x, p, rng);
    EXPECT_GE(x[t.id], sorted[49]);
    EXPECT_EQ(t.top_logprobs[0].id, std::max_element(x.begin(), x.end()) - x.begin());
  }
}

}  // namespace
}  // namespace strata
