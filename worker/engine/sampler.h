// Sampler: turns one row of logits into the next token for one request. Deterministic
// given (logits, params, history, rng state): the same seed gives the same tokens whatever
// else is in the batch, because each request owns its RNG and nothing here is shared.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include <msgpack.hpp>

#include "common/sampling_params.h"
#include "common/token_logprob.h"
#include "common/status.h"

namespace strata {

// Per-request random stream (xoshiro256**, seeded through splitmix64).
class SamplerRng {
 public:
  explicit SamplerRng(uint64_t seed);
  uint64_t next_u64();
  // Uniform in [0, 1) with 53 random bits.
  double next_double();

 private:
  uint64_t s_[4];
};

struct SampledToken {
  int32_t id = 0;
  float logprob = 0.0f;                   // of the chosen token, under the unmodified logits;
                                          // computed only when params.logprobs >= 0
  std::vector<TokenLogprob> top_logprobs;  // the top N (params.logprobs), most likely first
  MSGPACK_DEFINE_MAP(id, logprob, top_logprobs);
};

// The buffers one sampling call works in, sized to the vocabulary on first use and kept,
// so steady-state calls do not allocate. Its owner (the model runner) samples one row at a
// time through it; nothing in it carries over from one call to the next.
class SamplerWorkspace {
 public:
  void fit(size_t vocab);

  std::vector<float> logits;    // [vocab] penalized logits
  std::vector<uint64_t> keys;   // [vocab] rank keys, permuted in place
  std::vector<double> weights;  // [vocab] by id; valid for candidates only
  std::vector<int32_t> counts;  // [vocab] all zero between calls
  std::vector<uint8_t> seen;    // [vocab] all zero between calls
};

// Applies, in place and in this order, the repetition penalty (HF: each distinct id in
// prompt + output: logit > 0 ? logit / p : logit * p) and the OpenAI frequency/presence
// penalties (logit -= count_in_output * frequency + presence, for ids in the output).
// Ids outside [0, logits.size()) are ignored. Exposed for tests; sample_token calls it.
void apply_penalties(std::span<float> logits, const SamplingParams& params,
                     std::span<const int32_t> prompt_ids, std::span<const int32_t> output_ids,
                     SamplerWorkspace& workspace);

// Samples one token. `prompt_ids` and `output_ids` feed the penalties. `logits` is not
// modified. Logprobs are log-softmax of the raw logits (as OpenAI and vLLM report them).
// Order (vLLM's): penalties, temperature, top-k, top-p, min-p, renormalize, then one
// rng.next_double() drawn against the inverse CDF over the kept tokens sorted by
// descending probability (ties: lower id first). temperature == 0 is greedy: argmax of the
// penalized logits, lowest id on ties, and draws nothing from `rng`.
// Precondition: !logits.empty() and params.validate() is ok. NaN logits count as -inf.
SampledToken sample_token(std::span<const float> logits, const SamplingParams& params,
                          std::span<const int32_t> prompt_ids,
                          std::span<const int32_t> output_ids, SamplerRng& rng,
                          SamplerWorkspace& workspace);

// Speculative verification of `draft`, a token a deterministic proposer guessed would follow
// (worker/engine/speculative/): returns the token to output at this position; it is `draft`
// when the draft is accepted, and then the caller goes on to the next draft. Greedy: the
// target's argmax (accepted iff it equals the draft; draws nothing). Sampling: rejection
// sampling (accept with probability p(draft); else draw from p without the draft), two
// rng draws, so the returned token is distributed exactly as sample_token's.
SampledToken verify_draft_token(std::span<const float> logits, const SamplingParams& params,
                                std::span<const int32_t> prompt_ids,
                                std::span<const int32_t> output_ids, int32_t draft,
                                SamplerRng& rng, SamplerWorkspace& workspace);

}  // namespace strata
