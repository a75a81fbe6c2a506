// Every tokenizer kind on arbitrary bytes and ids: encode (any bytes, including invalid
// UTF-8), decode and incremental decode of arbitrary ids (out-of-range ids are folded into
// the vocabulary: the router rejects others before they reach a tokenizer). The first byte
// picks the tokenizer, the second the flags. Tokenizer files come from ../shared and the
// tests' generated data; those absent are left out.
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "common/tokenizer/tokenizer.h"
#include "tests/fuzz/fuzz_support.h"

namespace strata::fuzz {
namespace {

std::vector<std::unique_ptr<Tokenizer>> load_all() {
  const char* shared_env = std::getenv("STRATA_SHARED_DIR");
  const std::filesystem::path shared =
      shared_env ? shared_env : std::filesystem::path(STRATA_SOURCE_DIR) / ".." / "shared";
  const std::filesystem::path data = std::filesystem::path(STRATA_BINARY_DIR) / "test-data";
  const std::vector<std::string> paths = {
      "builtin:bytes",
      (shared / "models/aidreams260K/tok512.bin").string(),
      (shared / "models/llama2-tokenizer/tokenizer.bin").string(),
      (data / "tokenizer/llama2_hf_legacy_false/tokenizer.json").string(),
      (data / "gguf_tokenizer/gpt2.gguf").string(),
      (data / "gguf_tokenizer/llama.gguf").string(),
  };
  std::vector<std::unique_ptr<Tokenizer>> out;
  for (const std::string& path : paths) {
    if (auto t = load_tokenizer(path); t.ok()) out.push_back(std::move(t).value());
  }
  return out;
}

void exercise(const Tokenizer& t, uint8_t flags, std::string_view text) {
  const bool special = flags & 1;
  std::vector<int32_t> ids = t.encode(text, special);
  (void)t.decode(ids, flags & 2);
  std::vector<int32_t> arbitrary(text.size() / 4);
  for (size_t i = 0; i < arbitrary.size(); ++i) {
    uint32_t raw = 0;
    std::memcpy(&raw, text.data() + 4 * i, 4);
    arbitrary[i] = static_cast<int32_t>(raw % static_cast<uint32_t>(t.vocab_size()));
  }
  (void)t.decode(arbitrary, flags & 2);
  const size_t context = arbitrary.size() / 2;
  IncrementalDecoder stream(t, std::span<const int32_t>(arbitrary).first(context), flags & 4);
  for (size_t i = context; i < arbitrary.size(); ++i) (void)stream.push(arbitrary[i]);
  (void)stream.flush();
  for (int32_t id : arbitrary) (void)t.piece_to_id(t.id_to_piece(id));
}

}  // namespace
}  // namespace strata::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto tokenizers = strata::fuzz::load_all();
  if (size < 2 || tokenizers.empty()) return 0;
  const auto& t = *tokenizers[data[0] % tokenizers.size()];
  strata::fuzz::exercise(t, data[1], strata::fuzz::as_text(data + 2, size - 2));
  return 0;
}
