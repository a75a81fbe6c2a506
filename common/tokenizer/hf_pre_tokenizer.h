// HF pre-tokenizers (ByteLevel, Split, Metaspace, Digits, Whitespace, WhitespaceSplit,
// Sequence). Each refines a list of pieces; the BPE model then sees each piece separately.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/tokenizer/hf_json.h"

namespace strata::hf {

struct PreToken {
  std::string text;
  bool at_start = false;  // begins at offset 0 of the original input (Metaspace "first")
};

using PreTokenizer = std::function<void(std::vector<PreToken>&)>;

StatusOr<PreTokenizer> parse_pre_tokenizer(const JsonContext& ctx, const std::string& field,
                                           const nlohmann::json& node);

// GPT-2's byte -> printable code point table (the ByteLevel alphabet), as UTF-8 strings.
const std::vector<std::string>& byte_level_alphabet();

}  // namespace strata::hf
