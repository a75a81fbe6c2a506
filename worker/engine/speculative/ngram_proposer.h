// NgramProposer: prompt lookup decoding. The last n tokens of a sequence (n from max_n down
// to min_n) are looked up in the sequence's own earlier tokens, prompt and output; the tokens
// that followed the latest earlier occurrence are the drafts. No second model: it pays off on
// text that repeats its context (code edits, summaries quoting the source, extraction).
#pragma once

#include "worker/engine/speculative/draft_proposer.h"

namespace strata {

class NgramProposer final : public DraftProposer {
 public:
  NgramProposer(int32_t min_n, int32_t max_n) : min_n_(min_n), max_n_(max_n) {}
  void propose(std::span<DraftRequest> requests) override;

  // The drafts for one sequence's tokens (exposed for tests).
  static std::vector<int32_t> lookup(const Sequence& seq, int32_t min_n, int32_t max_n, int32_t max_drafts);

 private:
  int32_t min_n_, max_n_;
};

}  // namespace strata
