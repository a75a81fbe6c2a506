#include "worker/engine/speculative/model_proposer.h"

#include <algorithm>

#include "common/check.h"
#include "kernels/device.h"
#include "worker/engine/speculative/ngram_proposer.h"
#include "worker/engine/speculative/speculative_config.h"

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
  std::vector<std::vector<int32_t>> fed(requests.size());  // the tokens each request ran
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

Status SpeculativeConfig::validate() const {
  if (method != "none" && method != "ngram" && method != "draft" && method != "self-quantized") {
    return invalid_argument("`speculative_method` (--speculative-method) must be none, ngram, draft "
                            "or self-quantized. Given: {}", method);
  }
  if (method == "draft" && model.empty()) {
    return invalid_argument("--speculative-method draft needs --speculative-model: a smaller model "
                            "with the same vocabulary as --model");
  }
  if (ngram_min > ngram_max) {
    return invalid_argument("`ngram_prompt_lookup_min` ({}) must be <= `ngram_prompt_lookup_max` ({})",
                            ngram_min, ngram_max);
  }
  return config::check_ranges(*this);
}

StatusOr<std::unique_ptr<LoadedModel>> load_draft_model(const SpeculativeConfig& config,
                                                        const std::string& target_path,
                                                        const ModelLoadOptions& options) {
  if (!config.uses_draft_model()) return std::unique_ptr<LoadedModel>();
  ModelLoadOptions draft_options = options;
  if (config.method == "self-quantized") {
    draft_options.quantization = Quantization::kW4A16;
    auto loaded = load_model(target_path, draft_options);
    if (!loaded.ok()) {
      return Status(loaded.status().code(),
                    "--speculative-method self-quantized: " + loaded.status().message());
    }
    return loaded;
  }
  auto loaded = load_model(config.model, draft_options);
  if (!loaded.ok()) {
    return Status(loaded.status().code(), "--speculative-model: " + loaded.status().message());
  }
  return loaded;
}

StatusOr<std::unique_ptr<DraftProposer>> make_draft_proposer(const SpeculativeConfig& config,
                                                             const LoadedModel* draft,
                                                             KvCache& target_cache,
                                                             int64_t num_blocks) {
  if (config.method == "ngram") {
    return std::unique_ptr<DraftProposer>(std::make_unique<NgramProposer>(config.ngram_min, config.ngram_max));
  }
  if (!config.uses_draft_model()) return std::unique_ptr<DraftProposer>();
  if (draft == nullptr) {
    return invalid_argument("--speculative-method {} needs its draft model loaded (load_draft_model)",
                            config.method);
  }
  const bool shared = config.method == "self-quantized";
  return std::unique_ptr<DraftProposer>(std::make_unique<ModelProposer>(
      *draft, shared ? &target_cache : nullptr, target_cache.block_size(), num_blocks,
      target_cache.dtype()));
}

}  // namespace strata
