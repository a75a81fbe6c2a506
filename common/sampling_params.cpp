#include "common/sampling_params.h"

#include <cmath>

namespace strata {

namespace {

// True when lo <= x <= hi; false for NaN.
bool in_closed(float x, float lo, float hi) { return x >= lo && x <= hi; }

}  // namespace

Status SamplingParams::validate() const {
  if (!std::isfinite(temperature) || !in_closed(temperature, 0.0f, 100.0f)) {
    return invalid_argument(
        "`temperature` must be a finite number in [0, 100] (0 for greedy decoding). Given: {}",
        temperature);
  }
  if (top_k < -1) {
    return invalid_argument("`top_k` must be >= -1 (-1 or 0 to disable it). Given: {}", top_k);
  }
  if (!(top_p > 0.0f && top_p <= 1.0f)) {
    return invalid_argument("`top_p` must be in (0, 1] (1 to disable it). Given: {}", top_p);
  }
  if (!in_closed(min_p, 0.0f, 1.0f)) {
    return invalid_argument("`min_p` must be in [0, 1] (0 to disable it). Given: {}", min_p);
  }
  if (!(repetition_penalty > 0.0f && repetition_penalty <= 2.0f)) {
    return invalid_argument(
        "`repetition_penalty` must be in (0, 2] (1 to disable it). Given: {}",
        repetition_penalty);
  }
  if (!in_closed(presence_penalty, -2.0f, 2.0f)) {
    return invalid_argument("`presence_penalty` must be in [-2, 2] (0 to disable it). Given: {}",
                            presence_penalty);
  }
  if (!in_closed(frequency_penalty, -2.0f, 2.0f)) {
    return invalid_argument(
        "`frequency_penalty` must be in [-2, 2] (0 to disable it). Given: {}", frequency_penalty);
  }
  if (max_tokens < 1) {
    return invalid_argument("`max_tokens` must be >= 1. Given: {}", max_tokens);
  }
  if (stop_after_tokens < 0) {
    return invalid_argument("`stop_after_tokens` must be >= 0 (0 to disable it). Given: {}",
                            stop_after_tokens);
  }
  if (logprobs < -1 || logprobs > 20) {
    return invalid_argument(
        "`logprobs` must be in [-1, 20] (-1 for none, 0 for the chosen token only). Given: {}",
        logprobs);
  }
  for (size_t i = 0; i < stop_token_ids.size(); ++i) {
    if (stop_token_ids[i] < 0) {
      return invalid_argument("`stop_token_ids[{}]` must be >= 0. Given: {}", i,
                              stop_token_ids[i]);
    }
  }
  return ok_status();
}

}  // namespace strata
