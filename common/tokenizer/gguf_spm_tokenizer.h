// The GGUF `llama` tokenizer: llama.cpp's SPM tokenizer (SentencePiece BPE with scores and
// byte fallback), whose reference is `sentencepiece` on the model the file was made from.
#pragma once

#include <memory>

#include "common/tokenizer/gguf_vocab.h"

namespace strata::gguf_tok {

// What llama.cpp assumes for `llama` when a key is absent: BOS 1, EOS 2, unknown 0, add BOS.
VocabDefaults spm_defaults();

// `vocab` must hold scores (the caller checks). add_space_prefix is
// tokenizer.ggml.add_space_prefix (default true).
std::unique_ptr<Tokenizer> make_spm_tokenizer(GgufVocab vocab, bool add_space_prefix);

}  // namespace strata::gguf_tok
