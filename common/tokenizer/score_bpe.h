// ScoreBpe: SentencePiece-style BPE that merges by piece score, as run.c (llama2.c) and
// llama.cpp's SPM tokenizer do. Shared by the llama2.c tokenizer.bin and the GGUF `llama`
// tokenizer, which differ only in how they prepare the text (dummy prefix, "▁" for spaces)
// and where the byte-fallback ids live.
//
// Encoding: one symbol per UTF-8 character (a lead byte and at most 3 continuation bytes,
// as run.c groups them); a character outside the vocabulary becomes one symbol per byte
// (its byte-fallback id). Then the adjacent pair whose concatenation is in the vocabulary
// with the highest score merges, leftmost on ties, until no pair is in the vocabulary.
// run.c rescans all pairs after every merge (O(n^2)); a heap ordered by (score desc,
// position asc) over a linked list of symbols picks the same pair each step, because
// positions never reorder and stale heap entries are skipped.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace strata {

class ScoreBpe {
 public:
  // byte_ids[b]: the id a byte b of an unknown character becomes; -1 drops the byte.
  // pieces and scores have the same length (the caller checks).
  ScoreBpe(std::vector<std::string> pieces, std::vector<float> scores,
           std::array<int32_t, 256> byte_ids);

  // Appends the initial symbols of `text` (characters, or bytes of unknown characters).
  void append_symbols(std::string_view text, std::vector<int32_t>& symbols) const;
  // Merges `symbols` in place by score (see above).
  void merge(std::vector<int32_t>& symbols) const;

  int32_t size() const { return static_cast<int32_t>(pieces_.size()); }
  const std::string& piece(int32_t id) const { return pieces_[id]; }
  std::optional<int32_t> lookup(std::string_view piece) const;

 private:
  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::array<int32_t, 256> byte_ids_;
  std::unordered_map<std::string, int32_t> piece_ids_;
};

}  // namespace strata
