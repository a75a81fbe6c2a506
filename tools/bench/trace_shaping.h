// How a serving trace becomes requests for a small local model: lengths scaled and clamped,
// max_tokens capped. `strata bench` (real runs) and `strata simulate` apply the same shaping
// through this one function, so a simulation replays exactly the requests a run sent.
#pragma once

#include <cstdint>
#include <vector>

#include "worker/trace.h"

namespace strata::bench {

struct TraceShaping {
  int num_requests = 0;        // the first N rows; 0: all
  double length_scale = 1;     // prompt and output lengths × this (rounded, >= 1), before clamps
  int max_input_tokens = 0;    // clamp prompts (0: none)
  int max_output_tokens = 0;   // clamp outputs (0: none)
  int max_tokens_cap = 0;      // > output: ask for max_tokens = cap, force the length otherwise
};

struct ShapedRequest {
  double arrival_s = 0;  // the trace's own offset; divide by the time scale
  int32_t input_tokens = 1;
  int32_t output_tokens = 1;
  int32_t max_tokens = 1;  // max(output_tokens, cap)
};

std::vector<ShapedRequest> shape_trace(const std::vector<TraceRequest>& rows, const TraceShaping& shaping);

}  // namespace strata::bench
