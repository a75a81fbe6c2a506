// The tokenizer stored in a GGUF file's metadata (llama.cpp's format), by
// tokenizer.ggml.model: `llama` (SentencePiece BPE with scores and byte fallback, see
// gguf_spm_tokenizer.h) or `gpt2` (byte-level BPE with merges and the pre-tokenizer named
// by tokenizer.ggml.pre, see gguf_bpe_tokenizer.h). Keys and checks: gguf_vocab.h.
#pragma once

#include <memory>
#include <string>

#include "common/gguf/gguf_file.h"
#include "common/tokenizer/tokenizer.h"

namespace strata {

StatusOr<std::unique_ptr<Tokenizer>> load_gguf_tokenizer(const gguf::GgufFile& file);
// Opens `path` (a .gguf file) and loads its tokenizer.
StatusOr<std::unique_ptr<Tokenizer>> load_gguf_tokenizer(const std::string& path);

}  // namespace strata
