#include "common/tokenizer/score_bpe.h"

#include <queue>

namespace strata {
namespace {

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

}  // namespace

ScoreBpe::ScoreBpe(std::vector<std::string> pieces, std::vector<float> scores,
                   std::array<int32_t, 256> byte_ids)
    : pieces_(std::move(pieces)), scores_(std::move(scores)), byte_ids_(byte_ids) {
  piece_ids_.reserve(pieces_.size());
  // run.c's bsearch over the sorted vocabulary finds some id for a duplicated piece; keep
  // the first, which is what the Llama 2 vocabulary (no duplicates) needs.
  for (size_t id = 0; id < pieces_.size(); ++id) {
    piece_ids_.emplace(pieces_[id], static_cast<int32_t>(id));
  }
}

std::optional<int32_t> ScoreBpe::lookup(std::string_view piece) const {
  auto it = piece_ids_.find(std::string(piece));
  if (it == piece_ids_.end()) return std::nullopt;
  return it->second;
}

void ScoreBpe::append_symbols(std::string_view text, std::vector<int32_t>& symbols) const {
  for (size_t pos = 0; pos < text.size();) {
    size_t end = pos + 1;
    while (end < text.size() && end - pos < 4 && (static_cast<uint8_t>(text[end]) & 0xC0) == 0x80) {
      ++end;
    }
    if (auto id = lookup(text.substr(pos, end - pos))) {
      symbols.push_back(*id);
    } else {
      for (size_t i = pos; i < end; ++i) {
        const int32_t byte_id = byte_ids_[static_cast<uint8_t>(text[i])];
        if (byte_id >= 0) symbols.push_back(byte_id);
      }
    }
    pos = end;
  }
}

void ScoreBpe::merge(std::vector<int32_t>& ids) const {
  std::vector<Symbol> symbols(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    symbols[i] = {ids[i], static_cast<int32_t>(i) - 1,
                  i + 1 < ids.size() ? static_cast<int32_t>(i + 1) : -1};
  }
  std::priority_queue<Candidate> heap;
  std::string joined;
  auto consider = [&](int32_t left) {
    if (left < 0) return;
    const int32_t right = symbols[left].next;
    if (right < 0) return;
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
  ids.clear();
  for (int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) {
    ids.push_back(symbols[i].id);
  }
}

}  // namespace strata
