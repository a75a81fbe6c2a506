#include "common/llama2c_format.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

namespace strata {

bool looks_like_llama2c_checkpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  int32_t h[7];
  if (!in.read(reinterpret_cast<char*>(h), sizeof h)) return false;
  const int64_t dim = h[0], hidden = h[1], layers = h[2], heads = h[3], kv_heads = h[4];
  const int64_t vocab = h[5] < 0 ? -int64_t{h[5]} : h[5], seq_len = h[6];
  // Bounds far beyond any real model, but far below what float bits read as int32 give.
  const bool in_range = dim > 0 && dim <= (1 << 20) && hidden > 0 && hidden <= (1 << 22) &&
                        layers > 0 && layers <= 4096 && heads > 0 && heads <= dim &&
                        kv_heads > 0 && kv_heads <= heads && dim % heads == 0 && vocab > 0 &&
                        vocab <= (1 << 24) && seq_len > 0 && seq_len <= (1 << 24);
  if (!in_range) return false;
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  return !ec && static_cast<int64_t>(size) >= 28 + 4 * vocab * dim;
}

bool looks_like_llama2c_tokenizer(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  // The largest vocabularies (~256k pieces) take a few MiB; a bigger file is not one.
  if (ec || size < 4 || size > (64u << 20)) return false;
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes(size);
  if (!in.read(bytes.data(), static_cast<std::streamsize>(size))) return false;
  int32_t max_len = 0;
  std::memcpy(&max_len, bytes.data(), 4);
  if (max_len < 1 || max_len > (1 << 16)) return false;
  size_t at = 4, entries = 0;
  while (at < size) {
    if (size - at < 8) return false;
    float score = 0;
    int32_t len = 0;
    std::memcpy(&score, bytes.data() + at, 4);
    std::memcpy(&len, bytes.data() + at + 4, 4);
    if (!std::isfinite(score) || len < 0 || len > max_len || size - at - 8 < static_cast<size_t>(len)) {
      return false;
    }
    at += 8 + static_cast<size_t>(len);
    ++entries;
  }
  return entries >= 3;
}

Status tokenizer_given_as_model(const std::string& path) {
  return invalid_argument("`{}` is not a llama2.c checkpoint (it looks like a llama2.c tokenizer; "
                          "pass it as --tokenizer and the model as --model)",
                          path);
}

Status model_given_as_tokenizer(const std::string& path) {
  return invalid_argument("`{}` is not a llama2.c tokenizer.bin (it looks like a model checkpoint; "
                          "pass it as --model)",
                          path);
}

}  // namespace strata
