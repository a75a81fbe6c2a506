// encode_up_to: a prompt's token ids, or the proof that it has more than a limit, without
// tokenizing all of it. A hopeless prompt (megabytes against a context of thousands of
// tokens) is tokenized only as far as a prefix that is already over the limit, so checking
// its length costs time and memory in proportion to the limit, not to the prompt.
//
// Why a prefix proves it: the prefix ends where a word ends and whitespace begins, and every
// tokenizer strata loads splits there (SentencePiece splits at whitespace, the HF Metaspace
// and ByteLevel/regex pre-tokenizers put the space with the next word, the byte tokenizer
// has a token per byte), so the prefix's tokens are the first tokens of the whole text and
// the whole text has at least as many. A byte bound alone would not do: normalizers collapse
// whitespace, so bytes say nothing about the token count from below.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/tokenizer/tokenizer.h"

namespace strata {

struct BoundedEncoding {
  std::vector<int32_t> ids;     // the whole text's ids when within, else a prefix's (or all)
  bool within = true;           // ids.size() <= max_tokens and ids are the whole text's
  size_t encoded_bytes = 0;     // bytes of the text that were encoded
};

BoundedEncoding encode_up_to(const Tokenizer& tokenizer, std::string_view text, bool add_special_tokens,
                             int64_t max_tokens);

}  // namespace strata
