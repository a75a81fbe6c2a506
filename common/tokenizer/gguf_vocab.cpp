#include "common/tokenizer/gguf_vocab.h"

#include <algorithm>

namespace strata::gguf_tok {
namespace {

// Tokens llama.cpp treats as end-of-generation by their text (llama-vocab.cpp,
// special_eog_ids), forcing them to control type; files converted from HF rely on it.
constexpr const char* kEndOfGenerationNames[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>",
    "<EOT>"};

// An optional id key: absent gives `fallback`; present must name a token.
StatusOr<std::optional<int32_t>> read_id(const gguf::GgufFile& file, std::string_view key,
                                         size_t vocab_size, std::optional<int32_t> fallback) {
  if (!file.contains(key)) {
    if (fallback && static_cast<size_t>(*fallback) >= vocab_size) return std::optional<int32_t>();
    return fallback;
  }
  STRATA_ASSIGN_OR_RETURN(int64_t id, file.get_int(key));
  if (id < 0 || static_cast<uint64_t>(id) >= vocab_size) {
    return invalid_argument(
        "{}: metadata `{}` is {}, outside the vocabulary of {} tokens "
        "(tokenizer.ggml.tokens); expected 0..{}",
        file.path(), key, id, vocab_size, vocab_size - 1);
  }
  return std::optional<int32_t>(static_cast<int32_t>(id));
}

Status read_types(const gguf::GgufFile& file, GgufVocab& vocab) {
  vocab.types.assign(vocab.tokens.size(), TokenType::kNormal);
  constexpr std::string_view kKey = "tokenizer.ggml.token_type";
  if (!file.contains(kKey)) return ok_status();
  STRATA_ASSIGN_OR_RETURN(std::vector<int64_t> types, file.get_int_array(kKey));
  if (types.size() != vocab.tokens.size()) {
    return invalid_argument("{}: metadata `{}` has {} entries; tokenizer.ggml.tokens has {}",
                            file.path(), kKey, types.size(), vocab.tokens.size());
  }
  for (size_t id = 0; id < types.size(); ++id) {
    // A value llama.cpp does not know is "undefined"; it decodes like a normal token here.
    const int64_t t = types[id];
    vocab.types[id] = t >= 0 && t <= 6 ? static_cast<TokenType>(t) : TokenType::kUndefined;
  }
  return ok_status();
}

Status read_scores(const gguf::GgufFile& file, GgufVocab& vocab) {
  constexpr std::string_view kKey = "tokenizer.ggml.scores";
  if (!file.contains(kKey)) return ok_status();
  STRATA_ASSIGN_OR_RETURN(std::vector<double> scores, file.get_float_array(kKey));
  if (scores.size() != vocab.tokens.size()) {
    return invalid_argument("{}: metadata `{}` has {} entries; tokenizer.ggml.tokens has {}",
                            file.path(), kKey, scores.size(), vocab.tokens.size());
  }
  vocab.scores.assign(scores.begin(), scores.end());
  return ok_status();
}

Status read_special_ids(const gguf::GgufFile& file, const VocabDefaults& defaults,
                        GgufVocab& vocab) {
  const size_t n = vocab.tokens.size();
  STRATA_ASSIGN_OR_RETURN(vocab.bos_id,
                          read_id(file, "tokenizer.ggml.bos_token_id", n, defaults.bos_id));
  STRATA_ASSIGN_OR_RETURN(vocab.eos_id,
                          read_id(file, "tokenizer.ggml.eos_token_id", n, defaults.eos_id));
  STRATA_ASSIGN_OR_RETURN(vocab.unk_id,
                          read_id(file, "tokenizer.ggml.unknown_token_id", n, defaults.unk_id));
  STRATA_ASSIGN_OR_RETURN(vocab.pad_id,
                          read_id(file, "tokenizer.ggml.padding_token_id", n, std::nullopt));
  STRATA_ASSIGN_OR_RETURN(auto eot, read_id(file, "tokenizer.ggml.eot_token_id", n, std::nullopt));
  STRATA_ASSIGN_OR_RETURN(auto eom, read_id(file, "tokenizer.ggml.eom_token_id", n, std::nullopt));
  STRATA_ASSIGN_OR_RETURN(vocab.add_bos,
                          file.get_bool_or("tokenizer.ggml.add_bos_token", defaults.add_bos));
  STRATA_ASSIGN_OR_RETURN(vocab.add_eos, file.get_bool_or("tokenizer.ggml.add_eos_token", false));
  if (vocab.add_bos && !vocab.bos_id) {
    if (file.contains("tokenizer.ggml.add_bos_token")) {
      return invalid_argument(
          "{}: metadata `tokenizer.ggml.add_bos_token` is true but the file "
          "has no `tokenizer.ggml.bos_token_id`",
          file.path());
    }
    vocab.add_bos = false;  // only a default asked for it
  }
  if (vocab.add_eos && !vocab.eos_id) {
    return invalid_argument(
        "{}: metadata `tokenizer.ggml.add_eos_token` is true but the file has "
        "no `tokenizer.ggml.eos_token_id`",
        file.path());
  }
  auto add_stop = [&](std::optional<int32_t> id) {
    if (id &&
        std::find(vocab.stop_ids.begin(), vocab.stop_ids.end(), *id) == vocab.stop_ids.end()) {
      vocab.stop_ids.push_back(*id);
    }
  };
  add_stop(vocab.eos_id);
  add_stop(eot);
  add_stop(eom);
  for (const char* name : kEndOfGenerationNames) {
    auto it = vocab.ids.find(name);
    if (it == vocab.ids.end()) continue;
    vocab.types[it->second] = TokenType::kControl;
    add_stop(it->second);
  }
  return ok_status();
}

}  // namespace

std::vector<AddedToken> GgufVocab::added_tokens() const {
  std::vector<AddedToken> added;
  for (int32_t id = 0; id < size(); ++id) {
    const TokenType t = types[id];
    if (t != TokenType::kControl && t != TokenType::kUnknown && t != TokenType::kUserDefined) {
      continue;
    }
    added.push_back({.id = id, .content = tokens[id], .special = t != TokenType::kUserDefined,
                     .normalized = false, .lstrip = false, .rstrip = false,
                     .single_word = false});
  }
  return added;
}

StatusOr<GgufVocab> read_gguf_vocab(const gguf::GgufFile& file, const VocabDefaults& defaults) {
  GgufVocab vocab;
  vocab.file = file.path();
  STRATA_ASSIGN_OR_RETURN(vocab.tokens, file.get_string_array("tokenizer.ggml.tokens"));
  if (vocab.tokens.empty()) {
    return invalid_argument("{}: metadata `tokenizer.ggml.tokens` is empty", file.path());
  }
  if (vocab.tokens.size() > static_cast<size_t>(INT32_MAX)) {
    return invalid_argument("{}: metadata `tokenizer.ggml.tokens` has {} entries; at most {}",
                            file.path(), vocab.tokens.size(), INT32_MAX);
  }
  vocab.ids.reserve(vocab.tokens.size());
  for (size_t id = 0; id < vocab.tokens.size(); ++id) {
    if (vocab.tokens[id].empty()) vocab.tokens[id] = fmt::format("[EMPTY_{}]", id);
    vocab.ids[vocab.tokens[id]] = static_cast<int32_t>(id);
  }
  STRATA_RETURN_IF_ERROR(read_types(file, vocab));
  STRATA_RETURN_IF_ERROR(read_scores(file, vocab));
  STRATA_RETURN_IF_ERROR(read_special_ids(file, defaults, vocab));
  return vocab;
}

std::optional<int32_t> GgufTokenizerBase::piece_to_id(std::string_view piece) const {
  auto it = vocab_.ids.find(std::string(piece));
  if (it == vocab_.ids.end()) return std::nullopt;
  return it->second;
}

}  // namespace strata::gguf_tok
