// How a serving trace becomes requests for a small local model: lengths scaled and clamped,
// max_tokens capped. `strata bench` (real runs) and `strata simulate` apply the same shaping
// through this one function, so a simulation replays exactly the requests a run sent.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/config_fields.h"
#include "tools/bench/trace.h"

namespace strata::bench {

struct TraceShaping {
  int start = 0;               // rows skipped first; arrivals count from the first row kept
  int num_requests = 0;        // the first N rows; 0: all (each command offers its own default)
  double length_scale = 1;     // rounded, >= 1, before the clamps; must be > 0
  int max_input_tokens = 0;
  int max_output_tokens = 0;
  int max_tokens_cap = 0;

  // The shaping flags `strata bench --mode trace` and `strata simulate` share.
  template <typename V>
  void visit_fields(V& v) {
    using config::Range;
    v("trace_start", start, "trace: skip this many rows first (arrivals then count from the next one)", Range{0, 1 << 30});
    v("trace_length_scale", length_scale, "trace: multiply prompt and output lengths (before the clamps), for small models");
    v("max_input_tokens", max_input_tokens, "trace: clamp prompt lengths (0 = no clamp)", Range{0, 1 << 30});
    v("max_output_tokens", max_output_tokens, "trace: clamp output lengths (0 = no clamp)", Range{0, 1 << 30});
    v("max_tokens_cap", max_tokens_cap,
      "trace: ask for max_tokens = this cap and force each output length with `stop_after_tokens` "
      "(strata extension), so the server cannot read lengths off max_tokens (0 = ask for exactly the length)",
      Range{0, 1 << 30});
  }
};

// Which trace `strata bench --mode trace` and `strata simulate` replay, how fast, and how
// its requests are shaped: the flags both take.
struct TraceReplay {
  std::string trace;
  std::vector<double> time_scale = {1.0};
  TraceShaping shaping;

  template <typename V>
  void visit_fields(V& v) {
    v("trace", trace, "trace to replay: Azure CSV (TIMESTAMP, ContextTokens, GeneratedTokens), or Mooncake JSONL (.jsonl: timestamp, input_length, output_length, hash_ids)");
    v("trace_time_scale", time_scale, "trace: speed-ups to sweep (2 = arrivals twice as fast)");
    shaping.visit_fields(v);
  }
};

struct ShapedRequest {
  double arrival_s = 0;  // the trace's own offset; divide by the time scale
  int32_t input_tokens = 1;
  int32_t output_tokens = 1;
  int32_t max_tokens = 1;  // max(output_tokens, cap)
  // Mooncake: the trace's block ids and each block's length after scaling (512 × the length
  // scale, at least 1); a prompt is its blocks' tokens (block_prompt()), cut to input_tokens.
  std::vector<int64_t> block_ids;
  int32_t block_tokens = 0;
};

std::vector<ShapedRequest> shape_trace(const std::vector<TraceRequest>& rows, const TraceShaping& shaping);

}  // namespace strata::bench
