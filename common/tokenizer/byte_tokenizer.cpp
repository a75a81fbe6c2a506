#include "common/tokenizer/byte_tokenizer.h"

#include <fmt/format.h>

namespace strata {
namespace {

constexpr int32_t kNumSpecial = 3;
constexpr const char* kSpecialPieces[kNumSpecial] = {"<unk>", "<s>", "</s>"};

class ByteTokenizer final : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const override {
    std::vector<int32_t> ids;
    ids.reserve(text.size() + 1);
    if (add_special_tokens) ids.push_back(1);
    for (char c : text) ids.push_back(static_cast<uint8_t>(c) + kNumSpecial);
    return ids;
  }

  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override {
    std::string out;
    for (int32_t id : ids) {
      if (id < 0) continue;
      if (id < kNumSpecial) {
        if (!skip_special_tokens) out += kSpecialPieces[id];
        continue;
      }
      out.push_back(static_cast<char>((id - kNumSpecial) % 256));
    }
    return out;
  }

  int32_t vocab_size() const override { return 256 + kNumSpecial; }
  std::optional<int32_t> bos_id() const override { return 1; }
  std::vector<int32_t> stop_ids() const override { return {2}; }

  std::string id_to_piece(int32_t id) const override {
    if (id < 0) return "";
    if (id < kNumSpecial) return kSpecialPieces[id];
    return fmt::format("<0x{:02X}>", (id - kNumSpecial) % 256);
  }

  std::optional<int32_t> piece_to_id(std::string_view piece) const override {
    for (int32_t id = 0; id < kNumSpecial; ++id) {
      if (piece == kSpecialPieces[id]) return id;
    }
    if (piece.size() == 6 && piece.substr(0, 3) == "<0x" && piece[5] == '>') {
      const int value = std::stoi(std::string(piece.substr(3, 2)), nullptr, 16);
      return value + kNumSpecial;
    }
    return std::nullopt;
  }

  std::string_view kind() const override { return "byte"; }
};

}  // namespace

std::unique_ptr<Tokenizer> make_byte_tokenizer() { return std::make_unique<ByteTokenizer>(); }

}  // namespace strata
