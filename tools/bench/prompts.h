// Prompts of an exact token length: random token ids, or windows of a text corpus that the
// server tokenized once (so the ids are the server's own and the length is exact).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "tools/bench/trace_shaping.h"

namespace strata::bench {

// A trace request's prompt from its block ids: each block's tokens are drawn from a
// generator seeded by its id (and `seed`) alone, uniform in [min_id, max_id], so equal
// leading ids give equal leading tokens; cut to (or, past the last block, continued up to)
// input_tokens.
std::vector<int32_t> block_prompt(const ShapedRequest& request, int32_t min_id, int32_t max_id, uint64_t seed);

class PromptSource {
 public:
  // Random ids, uniform in [min_id, max_id].
  static PromptSource random_ids(int32_t min_id, int32_t max_id, uint64_t seed);
  // Windows of `corpus_ids` (non-empty), starting at random offsets, wrapping around.
  static PromptSource corpus(std::vector<int32_t> corpus_ids, uint64_t seed);

  std::vector<int32_t> next(int32_t num_tokens);

 private:
  PromptSource(std::vector<int32_t> corpus, int32_t min_id, int32_t max_id, uint64_t seed)
      : corpus_(std::move(corpus)), min_id_(min_id), max_id_(max_id), rng_(seed) {}
  std::vector<int32_t> corpus_;  // empty: random ids
  int32_t min_id_ = 0;
  int32_t max_id_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace strata::bench
