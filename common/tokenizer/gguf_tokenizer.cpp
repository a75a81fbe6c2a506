#include "common/tokenizer/gguf_tokenizer.h"

#include <spdlog/spdlog.h>

#include "common/tokenizer/gguf_bpe_tokenizer.h"
#include "common/tokenizer/gguf_spm_tokenizer.h"

namespace strata {
namespace {

StatusOr<std::unique_ptr<Tokenizer>> load_llama(const gguf::GgufFile& file) {
  if (!file.contains("tokenizer.ggml.scores")) {
    return not_found("{}: metadata `tokenizer.ggml.scores` is missing; the `llama` tokenizer "
                     "merges pieces by score", file.path());
  }
  STRATA_ASSIGN_OR_RETURN(gguf_tok::GgufVocab vocab,
                          gguf_tok::read_gguf_vocab(file, gguf_tok::spm_defaults()));
  STRATA_ASSIGN_OR_RETURN(bool add_space_prefix,
                          file.get_bool_or("tokenizer.ggml.add_space_prefix", true));
  return gguf_tok::make_spm_tokenizer(std::move(vocab), add_space_prefix);
}

StatusOr<std::unique_ptr<Tokenizer>> load_gpt2(const gguf::GgufFile& file) {
  STRATA_ASSIGN_OR_RETURN(std::string pre, file.get_string_or("tokenizer.ggml.pre", ""));
  if (pre.empty()) {
    // llama.cpp does the same, warning that generation quality will suffer.
    spdlog::warn("{}: metadata `tokenizer.ggml.pre` is missing; using the \"default\" "
                 "pre-tokenizer, which may not match the model's", file.path());
    pre = "default";
  }
  const auto spec = gguf_tok::find_pre_tokenizer(pre);
  if (!spec) {
    return unimplemented("{}: metadata `tokenizer.ggml.pre` is \"{}\", which is not a known "
                         "pre-tokenizer; known: {}", file.path(), pre,
                         gguf_tok::known_pre_tokenizer_names());
  }
  STRATA_ASSIGN_OR_RETURN(std::vector<std::string> merges,
                          file.get_string_array("tokenizer.ggml.merges"));
  gguf_tok::VocabDefaults defaults{.add_bos = spec->add_bos};
  STRATA_ASSIGN_OR_RETURN(gguf_tok::GgufVocab vocab, gguf_tok::read_gguf_vocab(file, defaults));
  return gguf_tok::make_bpe_tokenizer(std::move(vocab), merges, *spec);
}

}  // namespace

StatusOr<std::unique_ptr<Tokenizer>> load_gguf_tokenizer(const gguf::GgufFile& file) {
  STRATA_ASSIGN_OR_RETURN(std::string model, file.get_string("tokenizer.ggml.model"));
  if (model == "llama") return load_llama(file);
  if (model == "gpt2") return load_gpt2(file);
  return unimplemented("{}: metadata `tokenizer.ggml.model` is \"{}\"; strata reads \"llama\" "
                       "(SentencePiece BPE) and \"gpt2\" (byte-level BPE)", file.path(), model);
}

StatusOr<std::unique_ptr<Tokenizer>> load_gguf_tokenizer(const std::string& path) {
  STRATA_ASSIGN_OR_RETURN(gguf::GgufFile file, gguf::GgufFile::open(path));
  return load_gguf_tokenizer(file);
}

}  // namespace strata
