#include "router/scheduling/length_predictor.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace strata::router {
namespace {

const std::array<int64_t, kNumLengthBuckets>& bucket_uppers() {
  static const auto uppers = [] {
    std::array<int64_t, kNumLengthBuckets> u{};
    u[0] = 1;
    for (int b = 1; b < kNumLengthBuckets; ++b) {
      const auto edge = static_cast<int64_t>(std::llround(std::pow(2.0, b / 2.0)));
      u[b] = std::max(u[b - 1] + 1, edge);
    }
    return u;
  }();
  return uppers;
}

double bucket_lower(int b) { return b == 0 ? 0.0 : static_cast<double>(length_bucket_upper(b - 1)); }

// Quantile of the mass lying above `from` (continuous lengths, uniform inside buckets).
// Returns the length (not capped) and whether any mass lies above `from`.
std::pair<double, bool> quantile_above(const LengthDistribution::Weights& w, double q, double from) {
  std::array<double, kNumLengthBuckets> above{};
  double total = 0;
  for (int b = 0; b < kNumLengthBuckets; ++b) {
    const double lo = bucket_lower(b), hi = static_cast<double>(length_bucket_upper(b));
    const double frac = std::clamp((hi - std::max(lo, from)) / (hi - lo), 0.0, 1.0);
    above[b] = w[b] * frac;
    total += above[b];
  }
  if (total <= 0) return {0.0, false};
  const double target = std::clamp(q, 0.0, 1.0) * total;
  double cum = 0;
  for (int b = 0; b < kNumLengthBuckets; ++b) {
    if (above[b] <= 0) continue;
    if (cum + above[b] >= target) {
      const double lo = std::max(bucket_lower(b), from), hi = static_cast<double>(length_bucket_upper(b));
      return {lo + (target - cum) / above[b] * (hi - lo), true};
    }
    cum += above[b];
  }
  return {static_cast<double>(length_bucket_upper(kNumLengthBuckets - 1)), true};
}

int64_t log2_bucket(int64_t n) {
  int b = 0;
  while (n > 1) { n >>= 1; ++b; }
  return b;
}

}  // namespace

int64_t length_bucket_upper(int bucket) {
  return bucket_uppers()[std::clamp(bucket, 0, kNumLengthBuckets - 1)];
}

int length_bucket_of(int64_t tokens) {
  const auto& u = bucket_uppers();
  const auto it = std::lower_bound(u.begin(), u.end(), std::max<int64_t>(tokens, 0));
  return it == u.end() ? kNumLengthBuckets - 1 : static_cast<int>(it - u.begin());
}

LengthDistribution::LengthDistribution(const Weights& weights, int64_t cap_tokens)
    : weights_(weights), cap_tokens_(std::max<int64_t>(cap_tokens, 1)) {}

double LengthDistribution::total_mass() const {
  double t = 0;
  for (double w : weights_) t += w;
  return t;
}

int64_t LengthDistribution::quantile(double q) const {
  const auto [len, any] = quantile_above(weights_, q, 0.0);
  if (!any) return cap_tokens_;
  return std::min(cap_tokens_, static_cast<int64_t>(std::ceil(len)));
}

int64_t LengthDistribution::remaining_quantile(double q, int64_t generated) const {
  generated = std::max<int64_t>(generated, 0);
  if (generated >= cap_tokens_) return 0;
  const int64_t max_left = cap_tokens_ - generated;
  if (total_mass() <= 0) return max_left;
  const auto [len, any] = quantile_above(weights_, q, static_cast<double>(generated));
  if (!any) return std::min(max_left, std::max<int64_t>(generated, 1));
  const auto total = std::min(cap_tokens_, static_cast<int64_t>(std::ceil(len)));
  return std::clamp<int64_t>(total - generated, 0, max_left);
}

HistogramPredictor::HistogramPredictor(HistogramPredictorConfig config)
    : config_(config),
      decay_per_tick_(std::pow(0.5, 1.0 / std::max(config.half_life_observations, 1.0))) {
  const int last = length_bucket_of(config_.prior_max_tokens);
  for (int b = 1; b <= last; ++b) prior_[b] = config_.prior_mass / last;
}

std::array<std::string, 3> HistogramPredictor::keys(const RequestFeatures& f) const {
  const int route = f.route == Route::kChatCompletions ? 1 : 0;
  const int64_t mb = log2_bucket(f.max_tokens), pb = log2_bucket(f.prompt_tokens);
  return {fmt::format("f|{}|{:x}|{}|{}|{}|{}", route, f.template_hash, f.user, f.has_stop ? 1 : 0,
                      mb, pb),
          fmt::format("c|{}|{}|{}", route, mb, pb), fmt::format("r|{}", route)};
}

LengthDistribution::Weights HistogramPredictor::decayed(const Histogram& h) const {
  LengthDistribution::Weights w = h.weights;
  const double factor = std::pow(decay_per_tick_, static_cast<double>(tick_ - h.tick));
  for (double& x : w) x *= factor;
  return w;
}

std::pair<LengthDistribution::Weights, int> HistogramPredictor::lookup(
    const RequestFeatures& features) const {
  const auto k = keys(features);
  for (int level = 0; level < 3; ++level) {
    const auto it = histograms_.find(k[level]);
    if (it == histograms_.end()) continue;
    auto w = decayed(it->second);
    double mass = 0;
    for (double x : w) mass += x;
    if (mass >= config_.min_mass) return {w, level + 1};
  }
  LengthDistribution::Weights w = prior_;
  if (const auto it = histograms_.find(""); it != histograms_.end()) {
    const auto g = decayed(it->second);
    for (int b = 0; b < kNumLengthBuckets; ++b) w[b] += g[b];
  }
  return {w, 4};
}

LengthDistribution HistogramPredictor::predict(const RequestFeatures& features) const {
  return LengthDistribution(lookup(features).first, features.max_tokens);
}

int HistogramPredictor::level_used(const RequestFeatures& features) const {
  return lookup(features).second;
}

void HistogramPredictor::add(const std::string& key, int bucket) {
  Histogram& h = histograms_[key];
  h.weights = decayed(h);
  h.tick = tick_;
  h.weights[bucket] += 1.0;
}

void HistogramPredictor::observe(const RequestFeatures& features, int64_t output_tokens) {
  ++tick_;
  const int bucket = length_bucket_of(output_tokens);
  for (const auto& key : keys(features)) add(key, bucket);
  add("", bucket);
}

Status HistogramPredictor::save(const std::string& path) const {
  nlohmann::json hs = nlohmann::json::object();
  for (const auto& [key, h] : histograms_) {
    hs[key] = {{"tick", h.tick}, {"weights", h.weights}};
  }
  const nlohmann::json doc = {{"version", 1}, {"tick", tick_}, {"histograms", hs}};
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return not_found("length predictor snapshot: cannot write {}", tmp);
    out << doc.dump();
    if (!out.flush()) return data_loss("length predictor snapshot: writing {} failed", tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return data_loss("length predictor snapshot: cannot rename {} to {}", tmp, path);
  }
  return ok_status();
}

Status HistogramPredictor::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found("length predictor snapshot {} does not exist or cannot be read", path);
  try {
    const auto doc = nlohmann::json::parse(in);
    if (doc.at("version").get<int>() != 1) {
      return invalid_argument("length predictor snapshot {}: `version` must be 1. Given: {}", path,
                              doc.at("version").dump());
    }
    std::unordered_map<std::string, Histogram> hs;
    const auto tick = doc.at("tick").get<uint64_t>();
    for (const auto& [key, value] : doc.at("histograms").items()) {
      Histogram h;
      h.tick = value.at("tick").get<uint64_t>();
      const auto w = value.at("weights").get<std::vector<double>>();
      if (w.size() != h.weights.size() || h.tick > tick) {
        return data_loss("length predictor snapshot {}: histogram `{}` has {} weights (want {}) "
                         "or a tick past the snapshot's", path, key, w.size(), h.weights.size());
      }
      std::copy(w.begin(), w.end(), h.weights.begin());
      hs.emplace(key, h);
    }
    histograms_ = std::move(hs);
    tick_ = tick;
  } catch (const nlohmann::json::exception& e) {
    return data_loss("length predictor snapshot {} is not a valid snapshot: {}", path, e.what());
  }
  return ok_status();
}

}  // namespace strata::router
