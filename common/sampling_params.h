// SamplingParams: how one request picks its tokens. Shared by the router (which fills
// and validates it from the HTTP request) and the worker (which samples with it).
#pragma once

#include <cstdint>
#include <optional>
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
  // > 0: finish with reason "stop" after this many tokens, as if the model had emitted EOS.
  // A benchmarking aid (strata extension): trace replay forces each answer's length this
  // way while max_tokens stays the cap the router's scheduler sees.
  int32_t stop_after_tokens = 0;
  int32_t logprobs = -1;            // -1 ⇒ none; 0 ⇒ chosen token only; N ⇒ also top N (≤ 20)
  // false: this request never runs draft tokens, whatever the server's speculative decoding
  // (strata extension; its output is the same either way, only its speed differs).
  bool speculative = true;

  // Checks every field's range; the message names the field, the limit and the value.
  Status validate() const;
};

}  // namespace strata
