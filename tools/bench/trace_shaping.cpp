#include "tools/bench/trace_shaping.h"

#include <algorithm>
#include <cmath>

namespace strata::bench {

std::vector<ShapedRequest> shape_trace(const std::vector<TraceRequest>& rows, const TraceShaping& s) {
  const size_t first = std::min(rows.size(), static_cast<size_t>(std::max(s.start, 0)));
  const size_t left = rows.size() - first;
  const size_t n = s.num_requests > 0 ? std::min(left, static_cast<size_t>(s.num_requests)) : left;
  auto scaled = [&](int32_t tokens) {
    const double x = std::max<int32_t>(tokens, 1) * s.length_scale;
    return std::max<int32_t>(1, static_cast<int32_t>(std::lround(x)));
  };
  std::vector<ShapedRequest> out;
  out.reserve(n);
  for (size_t k = 0; k < n; ++k) {
    const TraceRequest& row = rows[first + k];
    ShapedRequest r{.arrival_s = row.arrival_s - rows[first].arrival_s, .input_tokens = scaled(row.prompt_tokens),
                    .output_tokens = scaled(row.output_tokens)};
    if (!row.block_ids.empty()) {
      r.block_ids = row.block_ids;
      r.block_tokens = scaled(kMooncakeBlockTokens);
    }
    if (s.max_input_tokens > 0) r.input_tokens = std::min(r.input_tokens, s.max_input_tokens);
    if (s.max_output_tokens > 0) r.output_tokens = std::min(r.output_tokens, s.max_output_tokens);
    r.max_tokens = std::max(r.output_tokens, s.max_tokens_cap);
    out.push_back(r);
  }
  return out;
}

}  // namespace strata::bench
