#include "common/tokenizer/tokenizer_discovery.h"

#include <filesystem>

#include "common/gguf/gguf_file.h"

namespace strata {

std::string default_tokenizer_for_model(const std::string& model_path) {
  namespace fs = std::filesystem;
  if (model_path.rfind("builtin:", 0) == 0) return "builtin:bytes";
  std::error_code ec;
  const fs::path path(model_path);
  if (fs::is_directory(path, ec)) {
    if (fs::exists(path / "tokenizer.json", ec)) return (path / "tokenizer.json").string();
    // A directory of one GGUF model (and no HF files) tokenizes with the GGUF's own.
    if (fs::exists(path / "config.json", ec)) return "";
    return gguf::only_gguf_file_in(model_path);
  }
  // A GGUF model carries its tokenizer; the file is its own tokenizer path.
  if (path.extension() == ".gguf" || gguf::is_gguf_file(model_path)) return model_path;
  const fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  if (path.extension() == ".safetensors" || path.filename() == "config.json") {
    return fs::exists(dir / "tokenizer.json", ec) ? (dir / "tokenizer.json").string() : "";
  }
  if (fs::exists(dir / "tokenizer.bin", ec)) return (dir / "tokenizer.bin").string();
  std::string found;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("tok", 0) == 0 && entry.path().extension() == ".bin") {
      if (!found.empty()) return "";  // ambiguous: let the user choose
      found = entry.path().string();
    }
  }
  return found;
}

}  // namespace strata
