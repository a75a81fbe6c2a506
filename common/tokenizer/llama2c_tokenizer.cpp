// run.c encodes by: [BOS] + " " (dummy prefix) + one piece per UTF-8 character (bytes + 3 for
// characters outside the vocabulary), then repeatedly merges the adjacent pair whose
// concatenation is in the vocabulary with the highest score, leftmost on ties. run.c rescans
// all pairs after every merge (O(n^2)); a heap ordered by (score desc, position asc) over a
// linked list of symbols picks the same pair each step, because positions never reorder and
// stale heap entries are skipped.
#include "common/tokenizer/llama2c_tokenizer.h"

#include <cstdio>
#include <fstream>
#include <queue>
#include <unordered_map>

namespace strata {
namespace {

constexpr int32_t kBos = 1;
constexpr int32_t kEos = 2;
constexpr int32_t kByteOffset = 3;

class Llama2cTokenizer final : public Tokenizer {
 public:
  Llama2cTokenizer(std::vector<std::string> pieces, std::vector<float> scores)
      : pieces_(std::move(pieces)), scores_(std::move(scores)) {
    piece_ids_.reserve(pieces_.size());
    // run.c's bsearch over the sorted vocabulary finds some id for a duplicated piece; keep
    // the first, which is what the Llama 2 vocabulary (no duplicates) needs.
    for (size_t id = 0; id < pieces_.size(); ++id) {
      piece_ids_.emplace(pieces_[id], static_cast<int32_t>(id));
    }
  }

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const override;
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override;

  int32_t vocab_size() const override { return static_cast<int32_t>(pieces_.size()); }
  std::optional<int32_t> bos_id() const override { return kBos; }
  std::vector<int32_t> stop_ids() const override { return {kBos, kEos}; }
  std::string id_to_piece(int32_t id) const override {
    return id >= 0 && id < vocab_size() ? pieces_[id] : std::string();
  }
  std::optional<int32_t> piece_to_id(std::string_view piece) const override { return lookup(piece); }
  std::string_view kind() const override { return "llama2c"; }

 private:
  std::optional<int32_t> lookup(std::string_view piece) const {
    auto it = piece_ids_.find(std::string(piece));
    if (it == piece_ids_.end()) return std::nullopt;
    return it->second;
  }

  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int32_t> piece_ids_;
};

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
};

struct Candidate {
  float score;
  int32_t pos;  // index of the left symbol
  int32_t left_id;
  int32_t right_id;
  int32_t merged_id;
  bool operator<(const Candidate& other) const {  // max-heap: best score, then leftmost
    if (score != other.score) return score < other.score;
    return pos > other.pos;
  }
};

std::vector<int32_t> Llama2cTokenizer::encode(std::string_view text,
                                              bool add_special_tokens) const {
  std::vector<int32_t> initial;
  if (add_special_tokens) initial.push_back(kBos);
  if (!text.empty()) {
    if (auto space = lookup(" ")) initial.push_back(*space);
  }
  // run.c groups a lead byte with at most 3 continuation bytes.
  for (size_t pos = 0; pos < text.size();) {
    size_t end = pos + 1;
    while (end < text.size() && end - pos < 4 && (static_cast<uint8_t>(text[end]) & 0xC0) == 0x80) {
      ++end;
    }
    if (auto id = lookup(text.substr(pos, end - pos))) {
      initial.push_back(*id);
    } else {
      for (size_t i = pos; i < end; ++i) {
        initial.push_back(static_cast<uint8_t>(text[i]) + kByteOffset);
      }
    }
    pos = end;
  }

  std::vector<Symbol> symbols(initial.size());
  for (size_t i = 0; i < initial.size(); ++i) {
    symbols[i] = {initial[i], static_cast<int32_t>(i) - 1,
                  i + 1 < initial.size() ? static_cast<int32_t>(i + 1) : -1};
  }
  std::priority_queue<Candidate> heap;
  std::string joined;
  auto consider = [&](int32_t left) {
    const int32_t right = symbols[left].next;
    if (left < 0 || right < 0) return;
    const int32_t a = symbols[left].id, b = symbols[right].id;
    joined.assign(pieces_[a]);
    joined.append(pieces_[b]);
    auto it = piece_ids_.find(joined);
    if (it == piece_ids_.end()) return;
    heap.push({scores_[it->second], left, a, b, it->second});
  };
  for (size_t i = 0; i + 1 < symbols.size(); ++i) consider(static_cast<int32_t>(i));
  while (!heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    Symbol& left = symbols[top.pos];
    if (left.id != top.left_id || left.next < 0 || symbols[left.next].id != top.right_id) continue;
    const int32_t right = left.next;
    left.id = top.merged_id;
    left.next = symbols[right].next;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    symbols[right].id = -1;  // dead; no live entry can point at it again
    consider(left.prev);
    consider(top.pos);
  }
  std::vector<int32_t> ids;
  for (int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) {
    ids.push_back(symbols[i].id);
  }
  return ids;
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
    std::string_view piece = pieces_[id];
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

}  // namespace

StatusOr<std::unique_ptr<Tokenizer>> load_llama2c_tokenizer(const std::string& path) {
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
  return std::unique_ptr<Tokenizer>(
      std::make_unique<Llama2cTokenizer>(std::move(pieces), std::move(scores)));
}

}  // namespace strata
