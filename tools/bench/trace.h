// Serving traces: what arrived when, with how many prompt and output tokens. Two formats:
// the Azure LLM inference CSV (TIMESTAMP, ContextTokens, GeneratedTokens), and Mooncake's
// JSONL (timestamp in ms, input_length, output_length, hash_ids), whose hash_ids name each
// 512-token block of the prompt so that equal leading ids are a shared prefix.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace strata {

inline constexpr int32_t kMooncakeBlockTokens = 512;

struct TraceRequest {
  double arrival_s = 0;   // since the first row
  int32_t prompt_tokens = 0;
  int32_t output_tokens = 0;
  // Mooncake: the ids of the prompt's blocks of kMooncakeBlockTokens (the last may be
  // partial); empty for traces without prefix identity.
  std::vector<int64_t> block_ids;
};

// Reads the CSV (CRLF or LF, header required); errors name the file and the line.
StatusOr<std::vector<TraceRequest>> load_trace_csv(const std::string& path);
// Reads Mooncake JSONL; errors name the file, the line and the field.
StatusOr<std::vector<TraceRequest>> load_trace_mooncake(const std::string& path);
// By extension: .jsonl is Mooncake, anything else the Azure CSV.
StatusOr<std::vector<TraceRequest>> load_trace(const std::string& path);

}  // namespace strata
