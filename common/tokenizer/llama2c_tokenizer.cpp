// run.c encodes by: [BOS] + " " (dummy prefix) + the text's characters (bytes + 3 for
// characters outside the vocabulary), merged by score (ScoreBpe, shared with the GGUF
// `llama` tokenizer). Pieces here hold ' ' where SentencePiece has U+2581.
#include "common/tokenizer/llama2c_tokenizer.h"

#include <cstdio>
#include <fstream>

#include "common/llama2c_format.h"
#include "common/tokenizer/score_bpe.h"

namespace strata {
namespace {

constexpr int32_t kBos = 1;
constexpr int32_t kEos = 2;
constexpr int32_t kByteOffset = 3;

// run.c's byte fallback: byte b is id b + 3 (ids 3..258 are "<0x00>".."<0xFF>").
std::array<int32_t, 256> llama2c_byte_ids(size_t vocab_size) {
  std::array<int32_t, 256> ids{};
  for (int b = 0; b < 256; ++b) {
    ids[b] = static_cast<size_t>(b + kByteOffset) < vocab_size ? b + kByteOffset : -1;
  }
  return ids;
}

class Llama2cTokenizer final : public Tokenizer {
 public:
  explicit Llama2cTokenizer(ScoreBpe bpe) : bpe_(std::move(bpe)) {}

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const override;
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override;

  int32_t vocab_size() const override { return bpe_.size(); }
  std::optional<int32_t> bos_id() const override { return kBos; }
  std::vector<int32_t> stop_ids() const override { return {kBos, kEos}; }
  std::string id_to_piece(int32_t id) const override {
    return id >= 0 && id < vocab_size() ? bpe_.piece(id) : std::string();
  }
  std::optional<int32_t> piece_to_id(std::string_view piece) const override {
    return bpe_.lookup(piece);
  }
  std::string_view kind() const override { return "llama2c"; }

 private:
  ScoreBpe bpe_;
};

std::vector<int32_t> Llama2cTokenizer::encode(std::string_view text,
                                              bool add_special_tokens) const {
  std::vector<int32_t> symbols;
  if (!text.empty()) {
    if (auto space = bpe_.lookup(" ")) symbols.push_back(*space);
  }
  bpe_.append_symbols(text, symbols);
  // BOS is a symbol like any other, as in run.c (no piece begins with "<s>", so it never
  // merges).
  if (add_special_tokens) symbols.insert(symbols.begin(), kBos);
  bpe_.merge(symbols);
  return symbols;
}

std::string Llama2cTokenizer::decode(std::span<const int32_t> ids,
                                     bool skip_special_tokens) const {
  std::string out;
  int32_t prev = -1;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) {
      prev = id;
      continue;
    }
    if (skip_special_tokens && id <= kEos) {
      prev = id;
      continue;
    }
    std::string_view piece = bpe_.piece(id);
    if (prev == kBos && !piece.empty() && piece[0] == ' ') piece.remove_prefix(1);
    unsigned int byte = 0;
    char tail = 0;
    if (piece.size() == 6 && std::sscanf(std::string(piece).c_str(), "<0x%02X%c", &byte, &tail) == 2 &&
        tail == '>') {
      out.push_back(static_cast<char>(byte));
    } else {
      out.append(piece);
    }
    prev = id;
  }
  return out;
}

StatusOr<std::unique_ptr<Tokenizer>> parse_llama2c_tokenizer(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("{}: cannot open the llama2.c tokenizer file", path);
  int32_t max_token_length = 0;
  if (!in.read(reinterpret_cast<char*>(&max_token_length), sizeof(max_token_length))) {
    return data_loss("{}: truncated before max_token_length (file shorter than 4 bytes)", path);
  }
  std::vector<std::string> pieces;
  std::vector<float> scores;
  while (in.peek() != std::char_traits<char>::eof()) {
    const size_t index = pieces.size();
    float score = 0;
    int32_t length = 0;
    if (!in.read(reinterpret_cast<char*>(&score), sizeof(score)) ||
        !in.read(reinterpret_cast<char*>(&length), sizeof(length))) {
      return data_loss("{}: truncated in the header of entry {} (score, length)", path, index);
    }
    if (length < 0 || length > (1 << 20)) {
      return data_loss("{}: entry {} has length {}; expected 0..{}", path, index, length, 1 << 20);
    }
    std::string piece(static_cast<size_t>(length), '\0');
    if (!in.read(piece.data(), length)) {
      return data_loss("{}: truncated in entry {}: expected {} bytes of piece text", path, index,
                       length);
    }
    pieces.push_back(std::move(piece));
    scores.push_back(score);
  }
  if (pieces.size() <= static_cast<size_t>(kEos)) {
    return data_loss("{}: holds {} entries; a llama2.c vocabulary needs at least 3", path,
                     pieces.size());
  }
  const auto byte_ids = llama2c_byte_ids(pieces.size());
  return std::unique_ptr<Tokenizer>(std::make_unique<Llama2cTokenizer>(
      ScoreBpe(std::move(pieces), std::move(scores), byte_ids)));
}

}  // namespace

StatusOr<std::unique_ptr<Tokenizer>> load_llama2c_tokenizer(const std::string& path) {
  auto tokenizer = parse_llama2c_tokenizer(path);
  // A checkpoint given as the tokenizer fails somewhere in its float arrays; say what it is.
  if (!tokenizer.ok() && tokenizer.status().code() == StatusCode::kDataLoss &&
      looks_like_llama2c_checkpoint(path)) {
    return model_given_as_tokenizer(path);
  }
  return tokenizer;
}

}  // namespace strata
