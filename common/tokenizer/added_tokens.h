// Added tokens (HF's AddedVocabulary; GGUF's control and user-defined tokens): strings
// matched in the raw text before any tokenization, each becoming one id. Shared by the HF
// tokenizer.json loader and the GGUF tokenizers so both split text the same way.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace strata {

struct AddedToken {
  int32_t id;
  std::string content;
  bool special, normalized, lstrip, rstrip, single_word;
};

struct Segment {
  std::string text;
  int32_t added_id = -1;  // >= 0: an added token, not to be tokenized further
  bool at_start = false;  // begins at offset 0 of the input
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  explicit AddedTokenMatcher(std::vector<AddedToken> tokens);

  // Leftmost-longest, non-overlapping matches of the tokens whose `normalized` flag equals
  // `normalized`, as HF's AddedVocabulary::find_matches (lstrip/rstrip widen a match;
  // single_word may reject one). Segments already holding an added token pass through.
  void split(std::vector<Segment>& segments, bool normalized) const;

  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  std::vector<AddedToken> tokens_;
  // Indices into tokens_ by first byte, so a scan tries only tokens that can match there.
  std::array<std::vector<uint32_t>, 256> by_first_byte_;
};

}  // namespace strata
