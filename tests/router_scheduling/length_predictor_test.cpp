#include "router/scheduling/length_predictor.h"

#include <cstdio>
#include <filesystem>

#include <gtest/gtest.h>

namespace strata::router {
namespace {

RequestFeatures chat(std::string user, int64_t max_tokens = 2048) {
  return {.prompt_tokens = 100, .max_tokens = max_tokens, .route = Route::kChatCompletions,
          .template_hash = 0xabc, .user = std::move(user), .has_stop = false};
}

TEST(LengthBuckets, AreIncreasingAndCoverTheirEdges) {
  for (int b = 1; b < kNumLengthBuckets; ++b) {
    EXPECT_LT(length_bucket_upper(b - 1), length_bucket_upper(b));
    EXPECT_EQ(length_bucket_of(length_bucket_upper(b)), b);
    EXPECT_EQ(length_bucket_of(length_bucket_upper(b - 1) + 1), b);
  }
  EXPECT_EQ(length_bucket_of(0), 0);
  EXPECT_GE(length_bucket_upper(kNumLengthBuckets - 1), int64_t{1} << 20);
}

TEST(HistogramPredictor, LearnsSeparateDistributionsPerKey) {
  HistogramPredictor p;
  for (int i = 0; i < 200; ++i) {
    p.observe(chat("alice"), 100);
    p.observe(chat("bob"), 10);
  }
  const auto a = p.predict(chat("alice")), b = p.predict(chat("bob"));
  EXPECT_EQ(p.level_used(chat("alice")), 1);
  // 100 lies in bucket (91, 128]; 10 in (8, 11].
  EXPECT_GE(a.median(), 91);
  EXPECT_LE(a.median(), 128);
  EXPECT_GE(b.median(), 8);
  EXPECT_LE(b.median(), 11);
  EXPECT_LE(a.quantile(0.1), a.quantile(0.9));
}

TEST(HistogramPredictor, FallsBackToCoarserKeysWhenAKeyHasTooLittleMass) {
  HistogramPredictor p(HistogramPredictorConfig{.min_mass = 20});
  for (int i = 0; i < 50; ++i) p.observe(chat("alice"), 300);
  // Same route, max_tokens and prompt buckets, unseen user: level 2 knows the answer.
  EXPECT_EQ(p.level_used(chat("carol")), 2);
  EXPECT_GE(p.predict(chat("carol")).median(), 256);
  // Other max_tokens bucket: only the route level matches.
  EXPECT_EQ(p.level_used(chat("carol", 64)), 3);
  // Completion route was never seen: the global level (prior + everything).
  RequestFeatures completion = chat("alice");
  completion.route = Route::kCompletions;
  EXPECT_EQ(p.level_used(completion), 4);
  // A key with fewer than min_mass observations is not trusted.
  for (int i = 0; i < 5; ++i) p.observe(chat("dave"), 3);
  EXPECT_EQ(p.level_used(chat("dave")), 2);
}

TEST(HistogramPredictor, ColdStartUsesThePrior) {
  HistogramPredictor p;
  const auto d = p.predict(chat("x"));
  EXPECT_EQ(p.level_used(chat("x")), 4);
  EXPECT_GT(d.median(), 1);
  EXPECT_LE(d.quantile(1.0), 1024);
}

TEST(HistogramPredictor, OldObservationsDecay) {
  HistogramPredictor p(HistogramPredictorConfig{.half_life_observations = 50});
  for (int i = 0; i < 500; ++i) p.observe(chat("a"), 10);
  EXPECT_LE(p.predict(chat("a")).median(), 11);
  for (int i = 0; i < 300; ++i) p.observe(chat("a"), 1000);
  // The 10s now weigh 2^-6 of what they did: the new regime dominates even at q = 0.1.
  EXPECT_GT(p.predict(chat("a")).quantile(0.1), 700);
}

TEST(HistogramPredictor, MaxTokensAlwaysCaps) {
  HistogramPredictor p;
  for (int i = 0; i < 100; ++i) p.observe(chat("a", 50), 1000);
  const auto d = p.predict(chat("a", 50));
  EXPECT_EQ(d.cap_tokens(), 50);
  EXPECT_EQ(d.median(), 50);
  EXPECT_EQ(d.quantile(1.0), 50);
  EXPECT_EQ(d.remaining_quantile(0.5, 40), 10);
  EXPECT_EQ(d.remaining_quantile(0.5, 50), 0);
  EXPECT_EQ(d.remaining_quantile(0.5, 70), 0);
}

TEST(LengthDistribution, RemainingLengthIsConditionalOnTokensSoFar) {
  LengthDistribution::Weights w{};
  w[length_bucket_of(10)] = 50;    // half the answers are ~10 tokens
  w[length_bucket_of(1000)] = 50;  // half ~1000 (bucket (724, 1024])
  const LengthDistribution d(w, 4096);
  EXPECT_LE(d.median(), 11);
  // Past 20 tokens only the long mode is left.
  const int64_t left = d.remaining_quantile(0.5, 20);
  EXPECT_GE(left, 724 - 20);
  EXPECT_LE(left, 1024 - 20);
  // Outlived every learned length: assume it lives as long again, capped.
  EXPECT_EQ(d.remaining_quantile(0.5, 2000), 2000);
  EXPECT_EQ(d.remaining_quantile(0.5, 3000), 4096 - 3000);
  // No mass at all: the cap is the only safe answer.
  EXPECT_EQ(LengthDistribution({}, 77).median(), 77);
}

TEST(HistogramPredictor, SnapshotRoundTrips) {
  const auto path = (std::filesystem::temp_directory_path() /
                     ("strata_predictor_" + std::to_string(::getpid()) + ".json")).string();
  HistogramPredictor p(HistogramPredictorConfig{.half_life_observations = 100});
  for (int i = 0; i < 80; ++i) p.observe(chat(i % 2 ? "a" : "b"), 20 + 7 * i);
  ASSERT_TRUE(p.save(path).ok());
  HistogramPredictor q(HistogramPredictorConfig{.half_life_observations = 100});
  ASSERT_TRUE(q.load(path).ok());
  for (const char* user : {"a", "b", "zz"}) {
    const auto x = p.predict(chat(user)), y = q.predict(chat(user));
    EXPECT_EQ(p.level_used(chat(user)), q.level_used(chat(user)));
    for (int b = 0; b < kNumLengthBuckets; ++b) EXPECT_DOUBLE_EQ(x.weights()[b], y.weights()[b]);
  }
  // Learning continues identically after the reload (the decay clock came along).
  p.observe(chat("a"), 5);
  q.observe(chat("a"), 5);
  EXPECT_EQ(p.predict(chat("a")).quantile(0.3), q.predict(chat("a")).quantile(0.3));

  // A corrupt file is an error that leaves the state alone.
  { std::FILE* f = std::fopen(path.c_str(), "w"); std::fputs("{\"version\": 1, \"tick\":", f); std::fclose(f); }
  const auto before = q.predict(chat("a")).median();
  const Status s = q.load(path);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(q.predict(chat("a")).median(), before);
  EXPECT_EQ(q.load(path + ".missing").code(), StatusCode::kNotFound);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace strata::router
