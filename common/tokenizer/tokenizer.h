// Tokenizer: text ⇄ token ids. Implementations: llama2.c tokenizer.bin, HF tokenizer.json
// (byte-level BPE with regex pre-tokenizers, SentencePiece-style BPE with byte fallback),
// GGUF metadata (tokenizer.ggml.model `llama`: SentencePiece BPE by score with byte
// fallback; `gpt2`: byte-level BPE with merges and llama.cpp's pre-tokenizer named by
// tokenizer.ggml.pre), and the built-in byte tokenizer of the builtin: models. Each matches
// its reference implementation exactly (run.c, HF `tokenizers`, `sentencepiece`; for GGUF
// the one its file was converted from, as llama.cpp tokenizes), which the tests check.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace strata {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // add_special_tokens: the tokenizer's own convention for BOS (and, for HF files, the
  // post-processor's template), as HF's `encode(text, add_special_tokens=True)`.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const = 0;

  // Bytes of the decoded ids, as the reference decoder produces them. May end in the middle
  // of a UTF-8 character (use IncrementalDecoder for streaming).
  virtual std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const = 0;

  virtual int32_t vocab_size() const = 0;
  virtual std::optional<int32_t> bos_id() const = 0;
  // Ids that end generation by default (EOS; llama2.c models stop on BOS as run.c does).
  virtual std::vector<int32_t> stop_ids() const = 0;
  // The piece as stored in the vocabulary ("▁the", "<0x0A>", "Ġthe"); for logs and tests.
  virtual std::string id_to_piece(int32_t id) const = 0;
  virtual std::optional<int32_t> piece_to_id(std::string_view piece) const = 0;
  // "llama2c", "hf-bpe", "gguf-llama", "gguf-gpt2", "byte"
  virtual std::string_view kind() const = 0;
};

// Loads by path: a llama2.c `.bin`, a `tokenizer.json`, a GGUF model (`.gguf`, or any file
// starting with the "GGUF" magic), a directory holding `tokenizer.json` (or
// `tokenizer.bin`), or "builtin:bytes". Errors name the file and field.
StatusOr<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& path);

// Streams text one token at a time without ever splitting a UTF-8 character: it decodes a
// short window of previous ids together with the new one and emits only the new, complete
// characters (the prefix/read-offset method of TGI and vLLM), so tokenizer-specific rules
// such as "strip the leading space after BOS" come out exactly as a full decode does.
class IncrementalDecoder {
 public:
  // context_ids: ids already shown (usually the prompt); they are not emitted again.
  IncrementalDecoder(const Tokenizer& tokenizer, std::span<const int32_t> context_ids,
                     bool skip_special_tokens = true);

  // Returns the text that became complete with this id (possibly empty).
  std::string push(int32_t id);
  // Returns whatever is still held back (an incomplete UTF-8 tail at the end of output).
  std::string flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::vector<int32_t> ids_;
  size_t prefix_offset_ = 0;
  size_t read_offset_ = 0;
};

}  // namespace strata
