// The GGUF `gpt2` tokenizer: llama.cpp's BPE tokenizer (byte-level BPE with ranked merges)
// with the pre-tokenizer regexes named by tokenizer.ggml.pre. Built from the same parts as
// the HF tokenizer.json loader (hf::BpeModel, hf pre-tokenizers), so the reference is the
// `tokenizers` package on the tokenizer.json the file was converted from.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/tokenizer/gguf_vocab.h"

namespace strata::gguf_tok {

// One tokenizer.ggml.pre value, as llama.cpp's llm_tokenizer_bpe reads it.
struct PreTokenizerSpec {
  std::vector<std::string> regexes;  // applied in turn, each splitting the previous pieces
  bool ignore_merges = false;        // a whole pre-token in the vocabulary is one token
  bool add_bos = false;              // llama.cpp's default when add_bos_token is absent
};

// nullopt for a name llama.cpp does not know.
std::optional<PreTokenizerSpec> find_pre_tokenizer(std::string_view name);
// The known names, comma-separated, for error messages.
std::string known_pre_tokenizer_names();

// `merges` is tokenizer.ggml.merges ("a b" per entry, rank = index).
StatusOr<std::unique_ptr<Tokenizer>> make_bpe_tokenizer(GgufVocab vocab,
                                                        const std::vector<std::string>& merges,
                                                        const PreTokenizerSpec& pre);

}  // namespace strata::gguf_tok
