// load_tokenizer: picks the format from the path (builtin name, directory, GGUF magic, file
// extension).
#include <filesystem>

#include "common/gguf/gguf_file.h"
#include "common/tokenizer/byte_tokenizer.h"
#include "common/tokenizer/gguf_tokenizer.h"
#include "common/tokenizer/hf_tokenizer.h"
#include "common/tokenizer/llama2c_tokenizer.h"

namespace strata {

StatusOr<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& path) {
  namespace fs = std::filesystem;
  if (path == "builtin:bytes") return make_byte_tokenizer();
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    if (fs::exists(dir / "tokenizer.json")) return load_hf_tokenizer((dir / "tokenizer.json").string());
    if (fs::exists(dir / "tokenizer.bin")) return load_llama2c_tokenizer((dir / "tokenizer.bin").string());
    return not_found("{}: directory holds neither tokenizer.json nor tokenizer.bin", path);
  }
  if (!fs::exists(path, ec)) {
    return not_found("{}: no such tokenizer file (expected a tokenizer.json, a llama2.c .bin, "
                     "a .gguf model, a directory holding one, or \"builtin:bytes\")", path);
  }
  // By content as well as by name: a GGUF model need not be called *.gguf.
  if (fs::path(path).extension() == ".gguf" || gguf::is_gguf_file(path)) {
    return load_gguf_tokenizer(path);
  }
  if (fs::path(path).extension() == ".json") return load_hf_tokenizer(path);
  return load_llama2c_tokenizer(path);
}

}  // namespace strata
