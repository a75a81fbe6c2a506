// Output-length prediction for router scheduling (issue 7).
//
// Design note. The router never knows how long an answer will be; it needs a *distribution*
// so that admission can take a pessimistic quantile, ordering a median, and a running
// request's remaining length can be re-estimated as it grows (the conditional quantile given
// the tokens already produced). A LengthDistribution holds mass over fixed log-spaced buckets
// (ratio ~sqrt(2), ~40 buckets up to 2^20 tokens), spread uniformly inside each bucket, and is
// truncated at the request's max_tokens: mass past the cap sits at the cap, because a request
// always stops there.
//
// HistogramPredictor (version 1) learns online from finished requests: one exponentially
// decayed histogram per feature key, at four levels of detail. predict() uses the most
// specific level whose decayed mass reaches min_mass:
//   1. full key: route, template hash, user, has_stop, max_tokens bucket, prompt bucket
//   2. (route, max_tokens bucket, prompt bucket)
//   3. (route)
//   4. global: every observation, plus a fixed prior that never decays
// Decay is by observation count (one global tick per observe()), so a key's old data fades
// as the traffic moves on even if that key is not seen again. Its state survives a restart
// through save()/load() (JSON). Pure logic: no clock, no threads, not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "common/status.h"
#include "router/api_types.h"

namespace strata::router {

struct RequestFeatures {
  int64_t prompt_tokens = 0;
  int64_t max_tokens = 0;         // the cap on output tokens; > 0
  Route route = Route::kCompletions;
  uint64_t template_hash = 0;     // hash of the system prompt / chat template (0: none)
  std::string user;               // the OpenAI `user` field ("" when absent)
  bool has_stop = false;          // stop strings or stop token ids were given
};

// Log-spaced length buckets shared by distributions and histograms. Bucket b holds lengths
// in (upper(b-1), upper(b)], bucket 0 holds [0, 1].
inline constexpr int kNumLengthBuckets = 42;
int64_t length_bucket_upper(int bucket);  // inclusive upper edge, strictly increasing
int length_bucket_of(int64_t tokens);     // the bucket holding `tokens` (>= 0), clamped

class LengthDistribution {
 public:
  using Weights = std::array<double, kNumLengthBuckets>;
  LengthDistribution() = default;
  // `weights` are non-negative masses per bucket (any total); `cap_tokens` (> 0) truncates.
  LengthDistribution(const Weights& weights, int64_t cap_tokens);

  // The q-quantile (q in [0, 1]) of the output length, in tokens, in [0, cap]. An empty
  // distribution (no mass) answers the cap: the safe bound.
  int64_t quantile(double q) const;
  int64_t median() const { return quantile(0.5); }
  // The q-quantile of the tokens still to come, given that `generated` tokens are out and the
  // request has not finished: the distribution conditioned on length > generated, minus
  // generated, in [0, cap - generated]. When no mass lies past `generated` (the request has
  // outlived what was learned) it assumes the request lives as long again, capped.
  int64_t remaining_quantile(double q, int64_t generated) const;
  double total_mass() const;
  int64_t cap_tokens() const { return cap_tokens_; }
  const Weights& weights() const { return weights_; }

 private:
  Weights weights_{};
  int64_t cap_tokens_ = 1;
};

class LengthPredictor {
 public:
  virtual ~LengthPredictor() = default;
  virtual LengthDistribution predict(const RequestFeatures& features) const = 0;
  // A request with `features` finished after `output_tokens` tokens.
  virtual void observe(const RequestFeatures& features, int64_t output_tokens) = 0;
  virtual Status save(const std::string& path) const = 0;
  virtual Status load(const std::string& path) = 0;
};

struct HistogramPredictorConfig {
  double half_life_observations = 5000;  // a sample's weight halves after this many more
  double min_mass = 20;                  // decayed mass a level needs before predict uses it
  // The prior of the global level: `prior_mass` spread evenly over the buckets of
  // [1, prior_max_tokens], so that a cold router predicts "anything up to ~1k tokens".
  double prior_mass = 1;
  int64_t prior_max_tokens = 1024;
};

class HistogramPredictor final : public LengthPredictor {
 public:
  explicit HistogramPredictor(HistogramPredictorConfig config = {});

  LengthDistribution predict(const RequestFeatures& features) const override;
  void observe(const RequestFeatures& features, int64_t output_tokens) override;
  // JSON: {"version": 1, "tick": N, "histograms": {key: {"tick": t, "weights": [...]}}}.
  // load() replaces the state; on error the state is unchanged.
  Status save(const std::string& path) const override;
  Status load(const std::string& path) override;

  // Which level predict() used for `features`: 1 (full key) .. 4 (global). For tests/metrics.
  int level_used(const RequestFeatures& features) const;

 private:
  struct Histogram {
    LengthDistribution::Weights weights{};
    uint64_t tick = 0;  // the global tick the weights were last decayed to
  };
  std::array<std::string, 3> keys(const RequestFeatures& features) const;  // levels 1..3
  LengthDistribution::Weights decayed(const Histogram& h) const;
  void add(const std::string& key, int bucket);
  // Weights of the level used, and the level (1..4).
  std::pair<LengthDistribution::Weights, int> lookup(const RequestFeatures& features) const;

  HistogramPredictorConfig config_;
  double decay_per_tick_;
  uint64_t tick_ = 0;
  std::unordered_map<std::string, Histogram> histograms_;  // "" is the global level
  LengthDistribution::Weights prior_{};
};

}  // namespace strata::router
