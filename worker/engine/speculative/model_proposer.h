// ModelProposer: a draft model guesses greedily, one batched decode step per draft position,
// over every sequence that speculates. Two kinds (--speculative-method):
//   - draft: a second, smaller model with the target's vocabulary and its own paged KV cache
//     over the same block ids (so the scheduler's block accounting covers it; the cache's
//     bytes come out of the same budget). Its cache catches up on whatever it has not seen
//     (the prompt at first, then the accepted tokens) in the first of those steps;
//   - self-quantized: the target's own weights at W4A16. It shares the target's KV cache:
//     the target has cached every position before the decode token, and each position the
//     draft writes (the decode token's and the drafts') is one the verification pass rewrites
//     with the target's own K/V before anything reads it, so one cache serves both.
// Single-rank groups only: the draft runs unsharded on the driver.
#pragma once

#include <map>
#include <memory>

#include "worker/engine/speculative/draft_proposer.h"
#include "worker/kv/kv_cache.h"
#include "worker/model/llama_model.h"
#include "worker/model/model_loader.h"

namespace strata {

class ModelProposer final : public DraftProposer {
 public:
  // `draft` must outlive the proposer. With `shared_cache` (self-quantized) the draft writes
  // into the target's cache, which must outlive it too and have the draft's shape; otherwise
  // the proposer owns a cache of `num_blocks` blocks for the draft.
  ModelProposer(const LoadedModel& draft, KvCache* shared_cache, int block_size, int64_t num_blocks,
                DType cache_dtype);
  void propose(std::span<DraftRequest> requests) override;
  void forget(RequestId id) override { states_.erase(id); }

 private:
  struct DraftState {
    int32_t num_cached = 0;           // positions whose draft K/V are in the cache
    int32_t drafts_at = 0;            // where the last drafts started
    std::vector<int32_t> drafts;      // the last drafts (their K/V follow num_cached)
  };
  int32_t cached_positions(const Sequence& seq);
  void step(const ForwardBatch& batch);

  const LoadedModel& draft_;
  LlamaModel forward_;
  std::unique_ptr<KvCache> own_cache_;
  KvCache* cache_;
  std::map<RequestId, DraftState> states_;
  std::vector<float> logits_;
};

}  // namespace strata
