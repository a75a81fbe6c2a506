#include "common/model_path.h"

#include <filesystem>

#include "common/gguf/gguf_file.h"
#include "common/llama2c_format.h"
#include "common/tokenizer/tokenizer_discovery.h"

namespace strata {
namespace {

constexpr std::string_view kBuiltin = "builtin:";

bool is_builtin(const std::string& path) { return path.rfind(kBuiltin, 0) == 0; }

}  // namespace

Status check_model_path(const std::string& model) {
  namespace fs = std::filesystem;
  if (is_builtin(model)) return ok_status();
  std::error_code ec;
  if (!fs::exists(model, ec)) {
    return not_found("model `{}` does not exist; --model takes a llama2.c .bin checkpoint, a .gguf "
                     "file, an HF directory (config.json + *.safetensors) or builtin:NAME (`strata "
                     "models` lists the builtins)",
                     model);
  }
  if (fs::is_directory(model, ec)) return ok_status();
  const fs::path path(model);
  // Only a file that would be read as a llama2.c checkpoint can be the other llama2.c file.
  const bool llama2c = path.extension() != ".gguf" && path.extension() != ".safetensors" &&
                       path.filename() != "config.json" && !gguf::is_gguf_file(model);
  if (llama2c && !looks_like_llama2c_checkpoint(model) && looks_like_llama2c_tokenizer(model)) {
    return tokenizer_given_as_model(model);
  }
  return ok_status();
}

StatusOr<std::string> resolve_tokenizer_path(const std::string& model, const std::string& tokenizer) {
  STRATA_RETURN_IF_ERROR(check_model_path(model));
  if (!tokenizer.empty()) {
    std::error_code ec;
    if (is_builtin(tokenizer) || std::filesystem::is_directory(tokenizer, ec)) return tokenizer;
    if (!std::filesystem::exists(tokenizer, ec)) {
      return not_found("tokenizer `{}` does not exist; --tokenizer takes a tokenizer.json, a llama2.c "
                       "tokenizer.bin, a .gguf model or a directory holding one",
                       tokenizer);
    }
    if (looks_like_llama2c_checkpoint(tokenizer) && !looks_like_llama2c_tokenizer(tokenizer)) {
      return model_given_as_tokenizer(tokenizer);
    }
    return tokenizer;
  }
  std::string found = default_tokenizer_for_model(model);
  if (found.empty()) {
    return not_found("no tokenizer found next to model `{}` (looked for tokenizer.json, tokenizer.bin "
                     "or a single tok*.bin beside it); pass --tokenizer PATH",
                     model);
  }
  return found;
}

}  // namespace strata
