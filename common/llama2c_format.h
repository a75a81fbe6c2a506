// llama2.c's two files, a checkpoint (model.bin) and a tokenizer (tokenizer.bin), sit side by
// side and carry no magic number, so a file given in the other's place otherwise fails deep
// in the parse ("entry 2 has length 999810033", "`intermediate_size` must be > 0"). These
// tell the two apart by the plausibility of their headers, for error messages only:
//   checkpoint: 7 × int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size —
//               negative when the classifier is untied — seq_len), then fp32 arrays;
//   tokenizer:  int32 max_token_length, then entries (float score, int32 len, len bytes).
#pragma once

#include <string>

#include "common/status.h"

namespace strata {

// A header whose fields are all in range and whose embedding table fits in the file.
bool looks_like_llama2c_checkpoint(const std::string& path);

// The whole file parses as tokenizer entries (finite scores, lengths within
// max_token_length), at least three of them.
bool looks_like_llama2c_tokenizer(const std::string& path);

// The errors for a file given in the other's place; they say which flag takes it.
Status tokenizer_given_as_model(const std::string& path);
Status model_given_as_tokenizer(const std::string& path);

}  // namespace strata
