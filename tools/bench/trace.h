// Serving traces in the Azure LLM inference CSV format (TIMESTAMP, ContextTokens,
// GeneratedTokens): what arrived when, with how many prompt and output tokens.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace strata {

struct TraceRequest {
  double arrival_s = 0;   // since the first row
  int32_t prompt_tokens = 0;
  int32_t output_tokens = 0;
};

// Reads the CSV (CRLF or LF, header required); errors name the file and the line.
StatusOr<std::vector<TraceRequest>> load_trace_csv(const std::string& path);

}  // namespace strata
