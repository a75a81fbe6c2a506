// TokenTrie: a vocabulary's token byte strings as a trie, built once per tokenizer, so that
// the tokens a grammar allows next (issue 19's token mask) are found by one walk: a subtree
// whose common prefix the GrammarMatcher refuses is skipped whole, instead of trying every
// token. A token is allowed when the matcher accepts all of its bytes; the end-of-text
// tokens when the text so far is complete. Plain logic: no tokenizer in here, its bytes per
// id are given.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/grammar/grammar_matcher.h"

namespace strata::grammar {

class TokenTrie {
 public:
  // `token_bytes[id]`: the bytes token `id` adds to the text; "" for a token never to be
  // sampled under a grammar (control tokens). `end_ids`: the tokens that end the text.
  TokenTrie(const std::vector<std::string>& token_bytes, std::vector<int32_t> end_ids);

  // allowed[id] after the text `matcher` has read.
  std::vector<bool> allowed(const GrammarMatcher& matcher) const;
  int32_t vocab_size() const { return vocab_size_; }
  size_t num_nodes() const { return nodes_.size(); }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> children;  // byte, node index; sorted
    std::vector<int32_t> token_ids;  // the tokens whose bytes end here
  };

  int32_t child(int32_t node, unsigned char byte);
  void walk(int32_t node, const GrammarMatcher& matcher, std::vector<bool>& allowed) const;

  std::vector<Node> nodes_;
  std::vector<int32_t> end_ids_;
  int32_t vocab_size_ = 0;
};

}  // namespace strata::grammar
