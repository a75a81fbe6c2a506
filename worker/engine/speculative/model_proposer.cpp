#include "worker/engine/speculative/model_proposer.h"

#include <algorithm>

#include "common/check.h"
#include "kernels/device.h"

namespace strata {
namespace {

int32_t argmax_row(const float* row, size_t vocab) {
  return static_cast<int32_t>(std::max_element(row, row + vocab) - row);
}

}  // namespace

ModelProposer::ModelProposer(const LoadedModel& draft, KvCache* shared_cache, int block_size,
                             int64_t num_blocks, DType cache_dtype)
    : draft_(draft),
      forward_(draft.config, draft.weights, backend_for(draft.weights.device)),
      own_cache_(shared_cache != nullptr
                     ? nullptr
                     : std::make_unique<KvCache>(draft.config, draft.weights.shard, block_size,
                                                 num_blocks, cache_dtype, draft.weights.device)),
      cache_(shared_cache != nullptr ? shared_cache : own_cache_.get()) {}

// Positions [0, result) of `seq` whose draft K/V are cached: the target's when the cache is
// shared; else what this proposer computed, including last step's drafts that were accepted.
int32_t ModelProposer::cached_positions(const Sequence& seq) {
  const int32_t last = seq.num_tokens() - 1;  // the decode token: always run
  if (own_cache_ == nullptr) return last;
  DraftState& st = states_[seq.id()];
  // The last draft's K/V were never written: it was only ever an output.
  for (size_t i = 0; i + 1 < st.drafts.size(); ++i) {
    const int32_t pos = st.drafts_at + static_cast<int32_t>(i);
    if (pos != st.num_cached || pos >= last || seq.token_at(pos) != st.drafts[i]) break;
    ++st.num_cached;
  }
  st.drafts.clear();
  return std::min(st.num_cached, last);
}

void ModelProposer::step(const ForwardBatch& batch) { forward_.forward(batch, *cache_, logits_); }

void ModelProposer::propose(std::span<DraftRequest> requests) {
  const auto vocab = static_cast<size_t>(draft_.config.vocab_size);
  // Step 0 runs each sequence from its first uncached position through the decode token; step
  // i > 0 runs draft i - 1. Each gives one logit row per sequence still drafting.
  for (int32_t round = 0;; ++round) {
    ForwardBatch batch;
    std::vector<size_t> who;
    for (size_t r = 0; r < requests.size(); ++r) {
      DraftRequest& req = requests[r];
      const Sequence& seq = *req.seq;
      if (round >= req.max_drafts) continue;
      int32_t start = 0, n = 1;
      if (round == 0) {
        start = cached_positions(seq);
        n = seq.num_tokens() - start;
        for (int32_t p = start; p < seq.num_tokens(); ++p) batch.token_ids.push_back(seq.token_at(p));
      } else {
        start = seq.num_tokens() + round - 1;
        batch.token_ids.push_back(req.drafts.back());
      }
      batch.sequences.push_back({.num_computed_tokens = start, .num_new_tokens = n,
                                 .block_table = seq.block_table, .num_logit_rows = 1});
      who.push_back(r);
    }
    if (who.empty()) break;
    step(batch);
    STRATA_CHECK(logits_.size() == who.size() * vocab);
    for (size_t i = 0; i < who.size(); ++i) {
      requests[who[i]].drafts.push_back(argmax_row(logits_.data() + i * vocab, vocab));
    }
  }
  if (own_cache_ == nullptr) return;
  for (DraftRequest& req : requests) {
    DraftState& st = states_[req.seq->id()];
    st.num_cached = req.seq->num_tokens();
    st.drafts_at = req.seq->num_tokens();
    st.drafts = req.drafts;
  }
}

}  // namespace strata
