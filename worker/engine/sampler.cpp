// Sampler design note. One call handles one row of logits for one request:
//   1. copy the logits into the caller's workspace (NaN → -inf) and apply the penalties there;
//   2. greedy: argmax (lowest id on ties);
//   3. otherwise each token becomes one 64-bit rank key (logit descending, then id
//      ascending, packed so that plain integer order is rank order); candidates are all
//      keys, or the top k (nth_element, O(V)); weights w = exp((x - x_max) / T) in double;
//      the kept set after top-p and min-p is always a rank prefix, and the inverse CDF in
//      rank order is a weighted quickselect: nth_element at the middle, sum the upper
//      half's mass, recurse into the half holding the target. Expected O(V), never a full
//      sort, and exactly the token a full sort followed by a linear walk would give (up to
//      the summation order of doubles);
//   4. logprobs come from the raw logits (max-shifted log-sum-exp in double).
// Speculative verification (verify_draft_token) builds the same kept set and weights as step
// 3, then accepts the draft with its probability or draws from the rest.
#include "worker/engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

#include "common/check.h"

namespace strata {


// ---------------------------------------------------------------------------------------
// SamplerRng: xoshiro256** (Blackman & Vigna), state filled from splitmix64(seed).

namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

SamplerRng::SamplerRng(uint64_t seed) {
  uint64_t x = seed;
  for (uint64_t& word : s_) word = splitmix64(x);
}

uint64_t SamplerRng::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double SamplerRng::next_double() {
  return static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
}

// ---------------------------------------------------------------------------------------
// Penalties

void SamplerWorkspace::fit(size_t vocab) {
  if (logits.size() >= vocab) return;
  logits.resize(vocab);
  keys.resize(vocab);
  weights.resize(vocab);
  counts.resize(vocab, 0);
  seen.resize(vocab, 0);
}

namespace {

bool valid_id(int32_t id, size_t vocab) { return id >= 0 && static_cast<size_t>(id) < vocab; }

float nan_to_neg_inf(float x) {
  return std::isnan(x) ? -std::numeric_limits<float>::infinity() : x;
}

// Rank key: ascending key order == logit descending, then id ascending. `x` is not NaN.
uint64_t rank_key(float x, int32_t id) {
  if (x == 0.0f) x = 0.0f;  // -0 and +0 are the same logit: tie, broken by id
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  const uint32_t ascending = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
  return static_cast<uint64_t>(~ascending) << 32 | static_cast<uint32_t>(id);
}

int32_t key_id(uint64_t key) { return static_cast<int32_t>(static_cast<uint32_t>(key)); }

}  // namespace

void apply_penalties(std::span<float> logits, const SamplingParams& params,
                     std::span<const int32_t> prompt_ids, std::span<const int32_t> output_ids,
                     SamplerWorkspace& scratch) {
  const size_t vocab = logits.size();
  scratch.fit(vocab);
  if (params.repetition_penalty != 1.0f) {
    const float p = params.repetition_penalty;
    auto penalize = [&](int32_t id) {
      if (!valid_id(id, vocab) || scratch.seen[id]) return;
      scratch.seen[id] = 1;
      float& x = logits[id];
      x = x > 0.0f ? x / p : x * p;
    };
    for (int32_t id : prompt_ids) penalize(id);
    for (int32_t id : output_ids) penalize(id);
    for (int32_t id : prompt_ids) {
      if (valid_id(id, vocab)) scratch.seen[id] = 0;
    }
    for (int32_t id : output_ids) {
      if (valid_id(id, vocab)) scratch.seen[id] = 0;
    }
  }
  if (params.frequency_penalty != 0.0f || params.presence_penalty != 0.0f) {
    for (int32_t id : output_ids) {
      if (valid_id(id, vocab)) ++scratch.counts[id];
    }
    for (int32_t id : output_ids) {
      if (!valid_id(id, vocab) || scratch.counts[id] == 0) continue;
      logits[id] -= static_cast<float>(scratch.counts[id]) * params.frequency_penalty +
                    params.presence_penalty;
      scratch.counts[id] = 0;  // applied once per distinct id; leaves the buffer zeroed
    }
  }
}

// ---------------------------------------------------------------------------------------
// Sampling

namespace {

// Inverse CDF in rank order over keys[0, n) with weights w (by id, non-increasing in rank):
// returns the rank r of the first token whose cumulative mass crosses `target` (cum > target,
// or cum >= target when `inclusive`). On return keys[0, r) are exactly the r best-ranked
// tokens (in no particular order), keys[r] is the token at rank r, and *mass_before is the
// mass of keys[0, r).
constexpr size_t kHeadRanks = 64;
// Below this k, top-k uses a heap (partial_sort), above it nth_element.
constexpr size_t kHeapTopKMax = 1024;

size_t weighted_select(uint64_t* keys, size_t n, const double* w, double target,
                       bool inclusive, double* mass_before) {
  auto crosses = [&](double cum) { return inclusive ? cum >= target : cum > target; };
  // An LLM's distribution is peaked: try the best few ranks first (a heap pass is ~15x
  // cheaper than nth_element over a large vocabulary), then halve what remains.
  auto walk = [&](size_t from, size_t to, double& before) -> std::optional<size_t> {
    for (size_t i = from; i < to; ++i) {
      const double wi = w[key_id(keys[i])];
      if (crosses(before + wi)) return i;
      before += wi;
    }
    return std::nullopt;
  };
  const size_t head = std::min(n, kHeadRanks);
  std::partial_sort(keys, keys + head, keys + n);
  double before = 0.0;
  if (auto r = walk(0, head, before)) {
    *mass_before = before;
    return *r;
  }
  size_t lo = head, hi = n;
  if (lo < hi) {
    while (hi - lo > kHeadRanks) {
      const size_t mid = lo + (hi - lo) / 2;
      std::nth_element(keys + lo, keys + mid, keys + hi);
      double upper = 0.0;
      for (size_t i = lo; i < mid; ++i) upper += w[key_id(keys[i])];
      if (crosses(before + upper)) {
        hi = mid;
      } else {
        before += upper;
        lo = mid;
      }
    }
    std::sort(keys + lo, keys + hi);
    if (auto r = walk(lo, hi, before)) {
      *mass_before = before;
      return *r;
    }
  } else {
    lo = 0;
  }
  // Rounding left the target at the very top of the mass: take the last token with mass.
  size_t r = hi - 1;
  while (r > lo && w[key_id(keys[r])] == 0.0) --r;
  *mass_before = before - w[key_id(keys[r])];
  return r;
}

int32_t argmax_lowest_id(std::span<const float> x) {
  size_t best = 0;
  for (size_t i = 1; i < x.size(); ++i) {
    if (x[i] > x[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

// The distribution a request samples from: its kept tokens keys[0, kept) (a rank prefix
// after top-k, top-p and min-p) with unnormalized weights w[id] summing to kept_mass.
struct KeptTokens {
  uint64_t* keys = nullptr;
  const double* w = nullptr;
  size_t kept = 0;
  double kept_mass = 0.0;
  bool contains(int32_t id) const {
    return std::any_of(keys, keys + kept, [&](uint64_t k) { return key_id(k) == id; });
  }
};

// Precondition: some logit of x is finite.
KeptTokens kept_tokens(const float* x, size_t vocab, const SamplingParams& params,
                       SamplerWorkspace& scratch) {
  const float x_max = x[argmax_lowest_id({x, vocab})];
  uint64_t* keys = scratch.keys.data();
  for (size_t i = 0; i < vocab; ++i) keys[i] = rank_key(x[i], static_cast<int32_t>(i));
  size_t n = vocab;
  if (params.top_k > 0 && static_cast<size_t>(params.top_k) < vocab) {
    n = static_cast<size_t>(params.top_k);
    if (n <= kHeapTopKMax) {
      std::partial_sort(keys, keys + n, keys + vocab);
    } else {
      std::nth_element(keys, keys + (n - 1), keys + vocab);
    }
  }

  // Unnormalized probabilities: w(top1) == exp(0) == 1.
  const double inv_t = 1.0 / static_cast<double>(params.temperature);
  double* w = scratch.weights.data();
  double total = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const int32_t id = key_id(keys[i]);
    w[id] = std::exp((static_cast<double>(x[id]) - x_max) * inv_t);
    total += w[id];
  }

  size_t kept = n;
  double kept_mass = total;
  if (params.top_p < 1.0f) {  // smallest rank prefix reaching top_p; at least one token
    double before = 0.0;
    const size_t r = weighted_select(keys, n, w, static_cast<double>(params.top_p) * total,
                                     /*inclusive=*/true, &before);
    kept = r + 1;
    kept_mass = before + w[key_id(keys[r])];
  }
  if (params.min_p > 0.0f) {  // w >= min_p · w(top1); a rank prefix too, never empty
    const double cut = static_cast<double>(params.min_p);
    uint64_t* end = std::partition(keys, keys + kept,
                                   [&](uint64_t k) { return w[key_id(k)] >= cut; });
    if (static_cast<size_t>(end - keys) < kept) {
      kept = static_cast<size_t>(end - keys);
      kept_mass = 0.0;
      for (size_t i = 0; i < kept; ++i) kept_mass += w[key_id(keys[i])];
    }
  }
  return {.keys = keys, .w = w, .kept = kept, .kept_mass = kept_mass};
}

bool all_masked(const float* x, size_t vocab) {
  return x[argmax_lowest_id({x, vocab})] == -std::numeric_limits<float>::infinity();
}

int32_t draw(const KeptTokens& t, double u) {
  double before = 0.0;
  const size_t r = weighted_select(t.keys, t.kept, t.w, u * t.kept_mass, /*inclusive=*/false, &before);
  return key_id(t.keys[r]);
}

int32_t sample_from_candidates(const float* x, size_t vocab, const SamplingParams& params,
                               SamplerWorkspace& scratch, SamplerRng& rng) {
  const double u = rng.next_double();
  if (all_masked(x, vocab)) return 0;  // no distribution to draw from; lowest id
  return draw(kept_tokens(x, vocab, params, scratch), u);
}

// Rejection sampling against a proposer that guessed `draft` deterministically (q is one-hot
// at it): accept with min(1, p/q) = p(draft); otherwise draw from max(0, p − q), which is p
// without the draft, renormalized. The output token is then distributed exactly as p.
int32_t verify_sampled_draft(const float* x, size_t vocab, const SamplingParams& params,
                             int32_t draft, SamplerWorkspace& scratch, SamplerRng& rng) {
  const double u_accept = rng.next_double();
  const double u_residual = rng.next_double();
  if (all_masked(x, vocab)) return 0;
  KeptTokens t = kept_tokens(x, vocab, params, scratch);
  const double p_draft = t.contains(draft) ? t.w[draft] / t.kept_mass : 0.0;
  if (u_accept < p_draft) return draft;
  if (p_draft > 0.0) {
    // Move the draft to the end of the kept ranks and leave it out.
    std::iter_swap(std::find_if(t.keys, t.keys + t.kept, [&](uint64_t k) { return key_id(k) == draft; }),
                   t.keys + t.kept - 1);
    t.kept_mass -= t.w[draft];
    --t.kept;
    if (t.kept == 0 || !(t.kept_mass > 0.0)) return draft;  // p was all on the draft
  }
  return draw(t, u_residual);
}

void fill_logprobs(std::span<const float> logits, const SamplingParams& params,
                   SamplerWorkspace& scratch, SampledToken& out) {
  const size_t vocab = logits.size();
  double x_max = -std::numeric_limits<double>::infinity();
  for (float v : logits) {
    if (v > x_max) x_max = v;  // NaN compares false: skipped
  }
  double sum = 0.0;
  if (std::isfinite(x_max)) {
    for (float v : logits) {
      if (!std::isnan(v)) sum += std::exp(static_cast<double>(v) - x_max);
    }
  }
  const double lse = std::isfinite(x_max) ? x_max + std::log(sum) : x_max;
  auto logprob_of = [&](int32_t id) {
    const float v = nan_to_neg_inf(logits[id]);
    return static_cast<float>(static_cast<double>(v) - lse);
  };
  out.logprob = logprob_of(out.id);

  const size_t top_n = std::min(static_cast<size_t>(params.logprobs), vocab);
  out.top_logprobs.clear();
  if (top_n == 0) return;
  uint64_t* keys = scratch.keys.data();  // ranked by the raw logits, not the penalized ones
  for (size_t i = 0; i < vocab; ++i) {
    keys[i] = rank_key(nan_to_neg_inf(logits[i]), static_cast<int32_t>(i));
  }
  std::partial_sort(keys, keys + top_n, keys + vocab);
  out.top_logprobs.reserve(top_n);
  for (size_t i = 0; i < top_n; ++i) {
    const int32_t id = key_id(keys[i]);
    out.top_logprobs.push_back({.id = id, .logprob = logprob_of(id)});
  }
}

// The request's logits in the workspace, NaN as -inf, with its penalties applied.
float* penalized_logits(std::span<const float> logits, const SamplingParams& params,
                        std::span<const int32_t> prompt_ids, std::span<const int32_t> output_ids,
                        SamplerWorkspace& scratch) {
  STRATA_CHECK(!logits.empty());
  STRATA_CHECK(logits.size() <= static_cast<size_t>(std::numeric_limits<int32_t>::max()));
  const size_t vocab = logits.size();
  scratch.fit(vocab);
  float* x = scratch.logits.data();
  for (size_t i = 0; i < vocab; ++i) x[i] = nan_to_neg_inf(logits[i]);
  apply_penalties({x, vocab}, params, prompt_ids, output_ids, scratch);
  return x;
}

}  // namespace

SampledToken sample_token(std::span<const float> logits, const SamplingParams& params,
                          std::span<const int32_t> prompt_ids,
                          std::span<const int32_t> output_ids, SamplerRng& rng,
                          SamplerWorkspace& scratch) {
  const size_t vocab = logits.size();
  const float* x = penalized_logits(logits, params, prompt_ids, output_ids, scratch);
  SampledToken out;
  if (params.temperature == 0.0f) {
    out.id = argmax_lowest_id({x, vocab});
  } else {
    out.id = sample_from_candidates(x, vocab, params, scratch, rng);
  }
  if (params.logprobs >= 0) fill_logprobs(logits, params, scratch, out);
  return out;
}

SampledToken verify_draft_token(std::span<const float> logits, const SamplingParams& params,
                                std::span<const int32_t> prompt_ids,
                                std::span<const int32_t> output_ids, int32_t draft,
                                SamplerRng& rng, SamplerWorkspace& scratch) {
  const size_t vocab = logits.size();
  const float* x = penalized_logits(logits, params, prompt_ids, output_ids, scratch);
  SampledToken out;
  out.id = params.temperature == 0.0f ? argmax_lowest_id({x, vocab})
                                      : verify_sampled_draft(x, vocab, params, draft, scratch, rng);
  if (params.logprobs >= 0) fill_logprobs(logits, params, scratch, out);
  return out;
}

}  // namespace strata
