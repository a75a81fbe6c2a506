// The tokenizer metadata of a GGUF file, read and checked once, and the base both GGUF
// tokenizers (`llama` and `gpt2`) share: pieces, token types, BOS/EOS and stop ids.
//
// Keys (llama.cpp's names): tokenizer.ggml.tokens (required), .token_type (1 normal,
// 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte; all normal when absent), .scores,
// .bos_token_id, .eos_token_id, .unknown_token_id, .padding_token_id, .eot_token_id,
// .eom_token_id, .add_bos_token, .add_eos_token. Every array length and id is checked
// against the vocabulary, and a message names the file, the key and the value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/gguf/gguf_file.h"
#include "common/tokenizer/added_tokens.h"
#include "common/tokenizer/tokenizer.h"

namespace strata::gguf_tok {

enum class TokenType : int32_t {
  kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5,
  kByte = 6,
};

// What a tokenizer model assumes when the file leaves a key out (llama.cpp's defaults).
struct VocabDefaults {
  std::optional<int32_t> bos_id;
  std::optional<int32_t> eos_id;
  std::optional<int32_t> unk_id;
  bool add_bos = false;
};

struct GgufVocab {
  std::string file;
  std::vector<std::string> tokens;  // empty pieces renamed "[EMPTY_i]", as llama.cpp does
  std::vector<TokenType> types;     // one per token
  std::vector<float> scores;        // one per token, or empty when the file has none
  std::unordered_map<std::string, int32_t> ids;  // a duplicated piece maps to its last id
  std::optional<int32_t> bos_id, eos_id, unk_id, pad_id;
  bool add_bos = false;
  bool add_eos = false;
  std::vector<int32_t> stop_ids;  // EOS, EOT, EOM and llama.cpp's end-of-generation names

  int32_t size() const { return static_cast<int32_t>(tokens.size()); }
  // Control, unknown and user-defined tokens: matched in the text before tokenizing, as HF
  // matches added tokens (a chat template's "<|im_start|>" becomes its one id).
  std::vector<AddedToken> added_tokens() const;
  // Control and unknown tokens: dropped by decode(skip_special_tokens=true).
  bool is_special(int32_t id) const {
    return types[id] == TokenType::kControl || types[id] == TokenType::kUnknown;
  }
};

StatusOr<GgufVocab> read_gguf_vocab(const gguf::GgufFile& file, const VocabDefaults& defaults);

// The Tokenizer methods both GGUF tokenizers answer the same way from a GgufVocab.
class GgufTokenizerBase : public Tokenizer {
 public:
  explicit GgufTokenizerBase(GgufVocab vocab) : vocab_(std::move(vocab)) {}
  int32_t vocab_size() const override { return vocab_.size(); }
  std::optional<int32_t> bos_id() const override { return vocab_.bos_id; }
  std::vector<int32_t> stop_ids() const override { return vocab_.stop_ids; }
  std::string id_to_piece(int32_t id) const override {
    return id >= 0 && id < vocab_.size() ? vocab_.tokens[id] : std::string();
  }
  std::optional<int32_t> piece_to_id(std::string_view piece) const override;

 protected:
  GgufVocab vocab_;
};

}  // namespace strata::gguf_tok
