// HF normalizers (Sequence, Prepend, Replace, NFC, NFKC, NFD, NFKD, Lowercase, Strip).
// A normalizer maps a piece of input text (between added tokens) to its normalized form.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "common/tokenizer/hf_json.h"

namespace strata::hf {

using Normalizer = std::function<std::string(std::string_view)>;

// `node` is the "normalizer" object (not null); `field` its path for messages.
StatusOr<Normalizer> parse_normalizer(const JsonContext& ctx, const std::string& field,
                                      const nlohmann::json& node);

}  // namespace strata::hf
