// HF tokenizer.json (model type BPE): added tokens, normalizer, pre-tokenizer, BPE model,
// post-processor and decoder, matching the `tokenizers` package's pipeline.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "common/tokenizer/tokenizer.h"

namespace strata {

// `path` is a tokenizer.json; a tokenizer_config.json beside it supplies bos/eos tokens.
StatusOr<std::unique_ptr<Tokenizer>> load_hf_tokenizer(const std::string& path);

// The same from parsed JSON: `tokenizer` is a tokenizer.json document, `config` a
// tokenizer_config.json one (or null); `name` stands for the file in messages. The GGUF
// loader builds such a document from the file's metadata.
StatusOr<std::unique_ptr<Tokenizer>> parse_hf_tokenizer(const std::string& name,
                                                        const nlohmann::json& tokenizer,
                                                        const nlohmann::json& config);

}  // namespace strata
