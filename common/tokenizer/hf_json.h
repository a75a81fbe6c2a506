// Small helpers for reading tokenizer.json: error messages that name the file and the JSON
// field path ("pre_tokenizer.pretokenizers[1].type").
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace strata::hf {

struct JsonContext {
  const std::string& file;  // the tokenizer.json path, for messages
};

// Token ids past this are refused: published vocabularies stay under 2^18 entries, and the
// tokenizer's id-indexed piece table is sized by the largest id.
constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;

// A token id at `field`. Checked before any conversion: nlohmann's get<int32_t> casts a float
// or a huge number out of range (undefined behaviour; fuzz_tokenizer_file found a 4e90 id).
inline StatusOr<int32_t> token_id(const JsonContext& ctx, const std::string& field,
                                  const nlohmann::json& node) {
  if (!node.is_number_integer() || node.get<int64_t>() < 0 || node.get<int64_t>() > kMaxTokenId) {
    return invalid_argument("{}: {} must be a token id from 0 to {}, got {}", ctx.file, field,
                            kMaxTokenId, node.dump());
  }
  return static_cast<int32_t>(node.get<int64_t>());
}

inline Status unsupported_type(const JsonContext& ctx, const std::string& field,
                               const nlohmann::json& node) {
  const std::string type = node.contains("type") && node["type"].is_string()
                               ? node["type"].get<std::string>()
                               : node.dump();
  return unimplemented("{}: {}.type \"{}\" is not supported", ctx.file, field, type);
}

// The pattern of a Replace/Split: {"String": "..."} or {"Regex": "..."}.
struct Pattern {
  std::string text;
  bool is_regex = false;
};

inline StatusOr<Pattern> parse_pattern(const JsonContext& ctx, const std::string& field,
                                       const nlohmann::json& node) {
  if (node.is_object() && node.contains("String") && node["String"].is_string()) {
    return Pattern{node["String"].get<std::string>(), false};
  }
  if (node.is_object() && node.contains("Regex") && node["Regex"].is_string()) {
    return Pattern{node["Regex"].get<std::string>(), true};
  }
  return invalid_argument("{}: {} must be {{\"String\": ...}} or {{\"Regex\": ...}}; got {}",
                          ctx.file, field, node.dump());
}

}  // namespace strata::hf
