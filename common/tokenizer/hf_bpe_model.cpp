// Merging follows HF's Word::merge_all: a heap of (rank, position) over a linked list of
// symbols; the lowest rank merges first, leftmost on ties; stale entries are skipped.
#include "common/tokenizer/hf_bpe_model.h"

#include <optional>
#include <queue>

#include "common/utf8.h"

namespace strata::hf {

StatusOr<BpeModel> BpeModel::parse(const JsonContext& ctx, const nlohmann::json& model) {
  BpeModel bpe;
  if (!model.contains("vocab") || !model["vocab"].is_object()) {
    return invalid_argument("{}: model.vocab must be an object of piece -> id", ctx.file);
  }
  for (const auto& [piece, id] : model["vocab"].items()) {
    STRATA_ASSIGN_OR_RETURN(bpe.vocab_[piece], token_id(ctx, fmt::format("model.vocab[\"{}\"]", piece), id));
  }
  auto string_or_empty = [&](const char* key) {
    return model.contains(key) && model[key].is_string() ? model[key].get<std::string>()
                                                         : std::string();
  };
  bpe.continuing_subword_prefix_ = string_or_empty("continuing_subword_prefix");
  bpe.end_of_word_suffix_ = string_or_empty("end_of_word_suffix");
  const std::string unk = string_or_empty("unk_token");
  if (!unk.empty()) {
    auto it = bpe.vocab_.find(unk);
    if (it == bpe.vocab_.end()) {
      return invalid_argument("{}: model.unk_token \"{}\" is not in model.vocab", ctx.file, unk);
    }
    bpe.unk_id_ = it->second;
  }
  bpe.fuse_unk_ = model.value("fuse_unk", false);
  bpe.byte_fallback_ = model.value("byte_fallback", false);
  bpe.ignore_merges_ = model.value("ignore_merges", false);
  if (model.contains("dropout") && model["dropout"].is_number() && model["dropout"].get<double>() > 0) {
    return unimplemented("{}: model.dropout {} is not supported (use null)", ctx.file,
                         model["dropout"].get<double>());
  }
  bpe.byte_ids_.assign(256, -1);
  for (int b = 0; b < 256; ++b) {
    auto it = bpe.vocab_.find(fmt::format("<0x{:02X}>", b));
    if (it != bpe.vocab_.end()) bpe.byte_ids_[b] = it->second;
  }
  const auto& merges = model.contains("merges") ? model["merges"] : nlohmann::json::array();
  const size_t prefix_length = bpe.continuing_subword_prefix_.size();
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& merge = merges[rank];
    std::string a, b;
    if (merge.is_string()) {
      const std::string text = merge.get<std::string>();
      const size_t space = text.find(' ');
      if (space == std::string::npos) {
        return invalid_argument("{}: model.merges[{}] \"{}\" is not \"a b\"", ctx.file, rank, text);
      }
      a = text.substr(0, space);
      b = text.substr(space + 1);
    } else if (merge.is_array() && merge.size() == 2) {
      a = merge[0].get<std::string>();
      b = merge[1].get<std::string>();
    } else {
      return invalid_argument("{}: model.merges[{}] must be \"a b\" or [\"a\", \"b\"]; got {}",
                              ctx.file, rank, merge.dump());
    }
    auto ia = bpe.vocab_.find(a), ib = bpe.vocab_.find(b);
    const std::string merged = a + (b.size() >= prefix_length ? b.substr(prefix_length) : b);
    auto im = bpe.vocab_.find(merged);
    if (ia == bpe.vocab_.end() || ib == bpe.vocab_.end() || im == bpe.vocab_.end()) {
      return invalid_argument("{}: model.merges[{}] (\"{}\", \"{}\") uses a piece not in model.vocab",
                              ctx.file, rank, a, b);
    }
    bpe.merges_.emplace(pair_key(ia->second, ib->second),
                        Merge{static_cast<int32_t>(rank), im->second});
  }
  return bpe;
}

void BpeModel::tokenize(std::string_view piece, std::vector<int32_t>& ids) const {
  if (piece.empty()) return;
  if (ignore_merges_) {
    if (auto it = vocab_.find(std::string(piece)); it != vocab_.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  std::vector<int32_t> symbols;
  std::optional<int32_t> pending_unk;
  std::string key;
  for (size_t pos = 0; pos < piece.size();) {
    const size_t length = utf8::char_length(piece, pos);
    const bool is_last = pos + length == piece.size();
    key.clear();
    if (pos > 0) key += continuing_subword_prefix_;
    key.append(piece.substr(pos, length));
    if (is_last) key += end_of_word_suffix_;
    if (auto it = vocab_.find(key); it != vocab_.end()) {
      if (pending_unk) symbols.push_back(*pending_unk);
      pending_unk.reset();
      symbols.push_back(it->second);
    } else {
      bool fell_back = false;
      if (byte_fallback_) {
        bool all = true;
        for (char c : key) all = all && byte_ids_[static_cast<uint8_t>(c)] >= 0;
        if (all) {
          // As HF: byte tokens go out before a still-pending unk.
          for (char c : key) symbols.push_back(byte_ids_[static_cast<uint8_t>(c)]);
          fell_back = true;
        }
      }
      if (!fell_back && unk_id_) {
        if (pending_unk && !fuse_unk_) symbols.push_back(*pending_unk);
        pending_unk = *unk_id_;
      }
    }
    pos += length;
  }
  if (pending_unk) symbols.push_back(*pending_unk);

  struct Entry {
    int32_t rank;
    int32_t pos;
    int32_t new_id;
    bool operator<(const Entry& other) const {  // max-heap on "better": lower rank, lower pos
      if (rank != other.rank) return rank > other.rank;
      return pos > other.pos;
    }
  };
  const int32_t n = static_cast<int32_t>(symbols.size());
  std::vector<int32_t> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (int32_t i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  std::priority_queue<Entry> heap;
  auto consider = [&](int32_t left) {
    if (left < 0 || next[left] < 0) return;
    auto it = merges_.find(pair_key(symbols[left], symbols[next[left]]));
    if (it != merges_.end()) heap.push({it->second.rank, left, it->second.new_id});
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);
  while (!heap.empty()) {
    const Entry top = heap.top();
    heap.pop();
    if (!alive[top.pos] || next[top.pos] < 0) continue;
    const int32_t right = next[top.pos];
    auto it = merges_.find(pair_key(symbols[top.pos], symbols[right]));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;
    symbols[top.pos] = top.new_id;
    alive[right] = false;
    next[top.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = top.pos;
    consider(prev[top.pos]);
    consider(top.pos);
  }
  for (int32_t i = n > 0 ? 0 : -1; i >= 0; i = next[i]) ids.push_back(symbols[i]);
}

}  // namespace strata::hf
