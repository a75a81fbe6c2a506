// HF decoders (ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence): each
// rewrites the list of token strings; the tokenizer concatenates the result.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/tokenizer/hf_json.h"

namespace strata::hf {

using Decoder = std::function<void(std::vector<std::string>&)>;

StatusOr<Decoder> parse_decoder(const JsonContext& ctx, const std::string& field,
                                const nlohmann::json& node);

}  // namespace strata::hf
