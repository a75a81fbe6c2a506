// Sampler: turns one row of logits into the next token for one request. Deterministic
// given (logits, params, history, rng state): the same seed gives the same tokens whatever
// else is in the batch, because each request owns its RNG and nothing here is shared.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "common/status.h"

namespace strata {

struct SamplingParams {
  float temperature = 1.0f;         // 0 ⇒ greedy (argmax); range [0, 100]
  int32_t top_k = 0;                // 0 or -1 ⇒ off; otherwise keep the k most likely
  float top_p = 1.0f;               // (0, 1]; 1 ⇒ off
  float min_p = 0.0f;               // [0, 1]; drop tokens below min_p · p(top1)
  float repetition_penalty = 1.0f;  // (0, 2]; HF/CTRL style, on prompt and output tokens
  float presence_penalty = 0.0f;    // [-2, 2]; OpenAI style, on output tokens
  float frequency_penalty = 0.0f;   // [-2, 2]; OpenAI style, on output tokens
  std::optional<uint64_t> seed;     // unset ⇒ drawn from the engine's seed sequence
  int32_t max_tokens = 16;          // ≥ 1
  std::vector<int32_t> stop_token_ids;  // extra ids that end generation
  bool ignore_eos = false;          // keep going past the model's EOS ids
  int32_t logprobs = -1;            // -1 ⇒ none; 0 ⇒ chosen token only; N ⇒ also top N (≤ 20)

  // Checks every field's range; the message names the field, the limit and the value.
  Status validate() const;
};

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

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0.0f;
};

struct SampledToken {
  int32_t id = 0;
  float logprob = 0.0f;                   // of the chosen token, under the unmodified logits;
                                          // computed only when params.logprobs >= 0
  std::vector<TokenLogprob> top_logprobs;  // the top N (params.logprobs), most likely first
};

// Applies, in place and in this order, the repetition penalty (HF: each distinct id in
// prompt + output: logit > 0 ? logit / p : logit * p) and the OpenAI frequency/presence
// penalties (logit -= count_in_output * frequency + presence, for ids in the output).
// Ids outside [0, logits.size()) are ignored. Exposed for tests; sample_token calls it.
void apply_penalties(std::span<float> logits, const SamplingParams& params,
                     std::span<const int32_t> prompt_ids, std::span<const int32_t> output_ids);

// Samples one token. `prompt_ids` and `output_ids` feed the penalties. `logits` is not
// modified. Logprobs are log-softmax of the raw logits (as OpenAI and vLLM report them).
// Order (vLLM's): penalties, temperature, top-k, top-p, min-p, renormalize, then one
// rng.next_double() drawn against the inverse CDF over the kept tokens sorted by
// descending probability (ties: lower id first). temperature == 0 is greedy: argmax of the
// penalized logits, lowest id on ties, and draws nothing from `rng`.
// Precondition: !logits.empty() and params.validate() is ok. NaN logits count as -inf.
SampledToken sample_token(std::span<const float> logits, const SamplingParams& params,
                          std::span<const int32_t> prompt_ids,
                          std::span<const int32_t> output_ids, SamplerRng& rng);

}  // namespace strata
