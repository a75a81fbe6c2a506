#include "common/grammar/token_mask.h"

#include <algorithm>

namespace strata::grammar {

TokenTrie::TokenTrie(const std::vector<std::string>& token_bytes, std::vector<int32_t> end_ids)
    : nodes_(1), end_ids_(std::move(end_ids)), vocab_size_(static_cast<int32_t>(token_bytes.size())) {
  for (size_t id = 0; id < token_bytes.size(); ++id) {
    if (token_bytes[id].empty()) continue;
    int32_t node = 0;
    for (char c : token_bytes[id]) node = child(node, static_cast<unsigned char>(c));
    nodes_[static_cast<size_t>(node)].token_ids.push_back(static_cast<int32_t>(id));
  }
}

int32_t TokenTrie::child(int32_t node, unsigned char byte) {
  auto& children = nodes_[static_cast<size_t>(node)].children;
  auto it = std::lower_bound(children.begin(), children.end(), byte,
                             [](const auto& entry, unsigned char b) { return entry.first < b; });
  if (it != children.end() && it->first == byte) return it->second;
  const auto index = static_cast<int32_t>(nodes_.size());
  children.insert(it, {byte, index});  // `children` is not used past here: nodes_ may move
  nodes_.emplace_back();
  return index;
}

std::vector<bool> TokenTrie::allowed(const GrammarMatcher& matcher) const {
  std::vector<bool> out(static_cast<size_t>(vocab_size_), false);
  walk(0, matcher, out);
  if (matcher.complete()) {
    for (int32_t id : end_ids_) out[static_cast<size_t>(id)] = true;
  }
  return out;
}

// `matcher` has read the bytes of the path to `node`: its tokens are allowed, and each child
// is tried with one more byte.
void TokenTrie::walk(int32_t node, const GrammarMatcher& matcher, std::vector<bool>& allowed) const {
  const Node& n = nodes_[static_cast<size_t>(node)];
  for (int32_t id : n.token_ids) allowed[static_cast<size_t>(id)] = true;
  for (const auto& [byte, next] : n.children) {
    const char c = static_cast<char>(byte);
    if (std::optional<GrammarMatcher> further = matcher.after(std::string_view(&c, 1))) walk(next, *further, allowed);
  }
}

}  // namespace strata::grammar
