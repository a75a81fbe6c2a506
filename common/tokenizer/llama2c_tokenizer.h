// The llama2.c tokenizer.bin format and run.c's encoder/decoder, reproduced exactly.
// File: int32 max_token_length, then per id: float32 score, int32 len, len bytes (pieces use
// ' ' where SentencePiece has U+2581). The vocabulary size is whatever the file holds.
#pragma once

#include <memory>
#include <string>

#include "common/tokenizer/tokenizer.h"

namespace strata {

StatusOr<std::unique_ptr<Tokenizer>> load_llama2c_tokenizer(const std::string& path);

}  // namespace strata
