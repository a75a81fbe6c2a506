#include "worker/engine/speculative/ngram_proposer.h"

#include <algorithm>

namespace strata {

std::vector<int32_t> NgramProposer::lookup(const Sequence& seq, int32_t min_n, int32_t max_n,
                                           int32_t max_drafts) {
  const int32_t len = seq.num_tokens();
  for (int32_t n = std::min(max_n, len - 1); n >= std::max(min_n, 1); --n) {
    // The latest start i < len - n whose n tokens equal the last n.
    for (int32_t i = len - n - 1; i >= 0; --i) {
      bool match = true;
      for (int32_t j = 0; j < n && match; ++j) match = seq.token_at(i + j) == seq.token_at(len - n + j);
      if (!match) continue;
      std::vector<int32_t> drafts;
      for (int32_t p = i + n; p < len && static_cast<int32_t>(drafts.size()) < max_drafts; ++p) {
        drafts.push_back(seq.token_at(p));
      }
      return drafts;
    }
  }
  return {};
}

void NgramProposer::propose(std::span<DraftRequest> requests) {
  for (DraftRequest& r : requests) r.drafts = lookup(*r.seq, min_n_, max_n_, r.max_drafts);
}

}  // namespace strata
