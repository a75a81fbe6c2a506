#include "tools/bench/prompts.h"

#include <algorithm>

namespace strata::bench {

std::vector<int32_t> block_prompt(const ShapedRequest& request, int32_t min_id, int32_t max_id, uint64_t seed) {
  const auto want = static_cast<size_t>(std::max(request.input_tokens, 0));
  std::vector<int32_t> ids;
  ids.reserve(want);
  std::mt19937_64 rng(seed);
  for (size_t b = 0; ids.size() < want; ++b) {
    const bool in_trace = b < request.block_ids.size();
    // Past the last block (rounding left the blocks short) its generator goes on.
    if (in_trace) rng.seed(seed ^ (static_cast<uint64_t>(request.block_ids[b]) * 0x9E3779B97F4A7C15ull));
    const size_t n = in_trace ? static_cast<size_t>(std::max(request.block_tokens, 1)) : want - ids.size();
    std::uniform_int_distribution<int32_t> dist(min_id, max_id);
    for (size_t i = 0; i < n && ids.size() < want; ++i) ids.push_back(dist(rng));
  }
  return ids;
}

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
