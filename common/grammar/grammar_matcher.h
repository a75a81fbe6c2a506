// GrammarMatcher: how far a text has come in a Grammar (grammar.h), as the set of pushdown
// stacks that could have read it (each stack: the rule positions still to finish, innermost
// last, its top at a code-point element; an empty stack: the start rule is complete). Bytes
// go in as UTF-8 and may stop inside a character, as a token's bytes do; the rest comes with
// the next call. Plain logic, copyable: the token mask (issue 19) tries each token on a copy.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/grammar/grammar.h"

namespace strata::grammar {

class GrammarMatcher {
 public:
  // At the start of `grammar`'s root rule; `grammar` must outlive the matcher.
  explicit GrammarMatcher(const Grammar& grammar);

  // Reads `bytes`; false, with nothing changed, when the grammar allows no text that
  // continues this way.
  bool accept(std::string_view bytes);
  // Whether accept(bytes) would succeed; changes nothing.
  bool allows(std::string_view bytes) const { return after(bytes).has_value(); }
  // The matcher once `bytes` are read, or nothing when the grammar refuses them: one copy,
  // which the token trie's walk keeps for the subtree below.
  std::optional<GrammarMatcher> after(std::string_view bytes) const;
  // Whether the text so far is a whole sentence (it may still go on).
  bool complete() const;
  // Whether nothing but the end may come (complete, and no stack expects more).
  bool must_end() const;

  size_t num_stacks() const { return stacks_.size(); }

 private:
  struct Position {
    int rule = 0;
    int alternative = 0;
    int index = 0;  // the next element of the alternative
    auto operator<=>(const Position&) const = default;
  };
  using Stack = std::vector<Position>;

  void expand(Stack stack, std::vector<Stack>& out) const;
  bool advance(std::string_view bytes);  // in place; the matcher is unusable when false
  bool accept_code_point(uint32_t cp);
  // Whether some stack can read a code point in [first, last] (an unfinished character).
  bool allows_some(uint32_t first, uint32_t last) const;
  const Element& top_element(const Stack& stack) const;
  static void deduplicate(std::vector<Stack>& stacks);

  const Grammar* grammar_;
  std::vector<Stack> stacks_;
  std::string partial_;  // the bytes of a character not finished yet
};

}  // namespace strata::grammar
