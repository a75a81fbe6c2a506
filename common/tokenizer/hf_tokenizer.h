// HF tokenizer.json (model type BPE): added tokens, normalizer, pre-tokenizer, BPE model,
// post-processor and decoder, matching the `tokenizers` package's pipeline.
#pragma once

#include <memory>
#include <string>

#include "common/tokenizer/tokenizer.h"

namespace strata {

// `path` is a tokenizer.json; a tokenizer_config.json beside it supplies bos/eos tokens.
StatusOr<std::unique_ptr<Tokenizer>> load_hf_tokenizer(const std::string& path);

}  // namespace strata
