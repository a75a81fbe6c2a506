#include "common/tokenizer/tokenizer_discovery.h"

#include <filesystem>

namespace strata {

std::string default_tokenizer_for_model(const std::string& model_path) {
  namespace fs = std::filesystem;
  if (model_path.rfind("builtin:", 0) == 0) return "builtin:bytes";
  std::error_code ec;
  const fs::path path(model_path);
  if (fs::is_directory(path, ec)) {
    return fs::exists(path / "tokenizer.json", ec) ? (path / "tokenizer.json").string() : "";
  }
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
