#include "common/grammar/grammar_matcher.h"

#include <algorithm>

namespace strata::grammar {
namespace {

// The length of the UTF-8 sequence a lead byte starts (0: not a lead byte).
size_t sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return lead >= 0xC2 ? 2 : 0;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return lead <= 0xF4 ? 4 : 0;
  return 0;
}

// The code point of a whole sequence, or the interval of those an unfinished one may become.
void code_point_interval(std::string_view bytes, size_t length, uint32_t& first, uint32_t& last) {
  const auto lead = static_cast<unsigned char>(bytes[0]);
  uint32_t value = length == 1 ? lead : length == 2 ? lead & 0x1Fu : length == 3 ? lead & 0x0Fu : lead & 0x07u;
  for (size_t i = 1; i < bytes.size(); ++i) value = value << 6 | (static_cast<unsigned char>(bytes[i]) & 0x3Fu);
  const auto missing = static_cast<uint32_t>(6 * (length - bytes.size()));
  first = value << missing;
  last = first | ((1u << missing) - 1);
}

}  // namespace

GrammarMatcher::GrammarMatcher(const Grammar& grammar) : grammar_(&grammar) {
  for (size_t a = 0; a < grammar.rules[static_cast<size_t>(grammar.root)].alternatives.size(); ++a) {
    expand({Position{.rule = grammar.root, .alternative = static_cast<int>(a), .index = 0}}, stacks_);
  }
  deduplicate(stacks_);
}

const Element& GrammarMatcher::top_element(const Stack& stack) const {
  const Position& p = stack.back();
  return grammar_->rules[static_cast<size_t>(p.rule)].alternatives[static_cast<size_t>(p.alternative)]
      [static_cast<size_t>(p.index)];
}

// Follows `stack` until its top is at a code-point element (or it is empty), through every
// alternative of each rule it enters. No left recursion (the parser refuses it), so this ends.
void GrammarMatcher::expand(Stack stack, std::vector<Stack>& out) const {
  while (!stack.empty()) {
    const Position& top = stack.back();
    const Sequence& seq = grammar_->rules[static_cast<size_t>(top.rule)].alternatives[static_cast<size_t>(top.alternative)];
    if (static_cast<size_t>(top.index) == seq.size()) {
      stack.pop_back();  // the rule is done; its caller already points past it
      continue;
    }
    const Element& e = seq[static_cast<size_t>(top.index)];
    if (e.kind == Element::Kind::kCodePoint) break;
    ++stack.back().index;  // where to go on once the rule is matched
    const auto& alternatives = grammar_->rules[static_cast<size_t>(e.rule)].alternatives;
    for (size_t a = 0; a + 1 < alternatives.size(); ++a) {
      Stack branch = stack;
      branch.push_back({.rule = e.rule, .alternative = static_cast<int>(a), .index = 0});
      expand(std::move(branch), out);
    }
    if (alternatives.empty()) return;  // a rule with no alternative matches nothing
    stack.push_back({.rule = e.rule, .alternative = static_cast<int>(alternatives.size() - 1), .index = 0});
  }
  out.push_back(std::move(stack));
}

void GrammarMatcher::deduplicate(std::vector<Stack>& stacks) {
  std::sort(stacks.begin(), stacks.end());
  stacks.erase(std::unique(stacks.begin(), stacks.end()), stacks.end());
}

bool GrammarMatcher::accept_code_point(uint32_t cp) {
  std::vector<Stack> next;
  for (const Stack& stack : stacks_) {
    if (stack.empty() || !top_element(stack).matches(cp)) continue;
    Stack advanced = stack;
    ++advanced.back().index;
    expand(std::move(advanced), next);
  }
  if (next.empty()) return false;
  deduplicate(next);
  stacks_ = std::move(next);
  return true;
}

bool GrammarMatcher::allows_some(uint32_t first, uint32_t last) const {
  return std::any_of(stacks_.begin(), stacks_.end(), [&](const Stack& stack) {
    return !stack.empty() && top_element(stack).matches_any(first, last);
  });
}

bool GrammarMatcher::advance(std::string_view bytes) {
  for (char c : bytes) {
    partial_.push_back(c);
    const size_t length = sequence_length(static_cast<unsigned char>(partial_[0]));
    if (length == 0 || (partial_.size() > 1 && (static_cast<unsigned char>(c) & 0xC0) != 0x80)) {
      return false;  // not UTF-8
    }
    if (partial_.size() < length) continue;
    uint32_t cp = 0, unused = 0;
    code_point_interval(partial_, length, cp, unused);
    partial_.clear();
    if (!accept_code_point(cp)) return false;
  }
  if (partial_.empty()) return true;
  uint32_t first = 0, last = 0;
  code_point_interval(partial_, sequence_length(static_cast<unsigned char>(partial_[0])), first, last);
  return allows_some(first, last);
}

std::optional<GrammarMatcher> GrammarMatcher::after(std::string_view bytes) const {
  GrammarMatcher next = *this;
  if (!next.advance(bytes)) return std::nullopt;
  return next;
}

bool GrammarMatcher::accept(std::string_view bytes) {
  std::optional<GrammarMatcher> next = after(bytes);
  if (!next) return false;
  *this = std::move(*next);
  return true;
}

bool GrammarMatcher::complete() const {
  return partial_.empty() && std::any_of(stacks_.begin(), stacks_.end(), [](const Stack& s) { return s.empty(); });
}

bool GrammarMatcher::must_end() const {
  return complete() && std::all_of(stacks_.begin(), stacks_.end(), [](const Stack& s) { return s.empty(); });
}

}  // namespace strata::grammar
