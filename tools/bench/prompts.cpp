#include "tools/bench/prompts.h"

namespace strata::bench {

PromptSource PromptSource::random_ids(int32_t min_id, int32_t max_id, uint64_t seed) {
  return PromptSource({}, min_id, max_id, seed);
}

PromptSource PromptSource::corpus(std::vector<int32_t> corpus_ids, uint64_t seed) {
  return PromptSource(std::move(corpus_ids), 0, 0, seed);
}

std::vector<int32_t> PromptSource::next(int32_t num_tokens) {
  std::vector<int32_t> ids(static_cast<size_t>(std::max(num_tokens, 0)));
  if (corpus_.empty()) {
    std::uniform_int_distribution<int32_t> dist(min_id_, max_id_);
    for (int32_t& id : ids) id = dist(rng_);
    return ids;
  }
  std::uniform_int_distribution<size_t> start(0, corpus_.size() - 1);
  size_t at = start(rng_);
  for (int32_t& id : ids) {
    id = corpus_[at];
    at = (at + 1) % corpus_.size();
  }
  return ids;
}

}  // namespace strata::bench
