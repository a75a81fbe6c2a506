// SpeculativeConfig: which proposer a worker group's engine drafts with (the engine's half of
// the speculative settings; how many drafts a step takes is the scheduler's, SchedulerConfig).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/config_fields.h"
#include "common/status.h"
#include "worker/engine/speculative/draft_proposer.h"
#include "worker/model/model_loader.h"

namespace strata {

class KvCache;

struct SpeculativeConfig {
  std::string method = "none";  // none, ngram, draft or self-quantized
  std::string model;            // the draft model (method draft), named as --model names one
  int32_t ngram_min = 1;
  int32_t ngram_max = 3;

  template <typename V>
  void visit_fields(V& v) {
    using config::Range;
    v("speculative_method", method, "speculative decoding: none, ngram (prompt lookup), draft (--speculative-model) or self-quantized (the model's own weights at W4A16 as the draft)");
    v("speculative_model", model, "the draft model of --speculative-method draft (same vocabulary as --model)");
    v("ngram_prompt_lookup_min", ngram_min, "ngram: the shortest suffix looked up", Range{1, 64});
    v("ngram_prompt_lookup_max", ngram_max, "ngram: the longest suffix looked up", Range{1, 64});
  }
  bool enabled() const { return method != "none"; }
  bool uses_draft_model() const { return method == "draft" || method == "self-quantized"; }
  Status validate() const;
  // A draft model runs unsharded on the driver: its methods need a group of one rank.
  Status check_group_size(int world_size) const;
};

// The draft model `config` names, loaded like the target (`target_path` with `options`; the
// target's own checkpoint at W4A16 for self-quantized): nullptr for methods without one.
StatusOr<std::unique_ptr<LoadedModel>> load_draft_model(const SpeculativeConfig& config,
                                                        const std::string& target_path,
                                                        const ModelLoadOptions& options);

// The proposer `config` names. `draft` is the loaded draft model (methods that have one);
// self-quantized drafts into `target_cache`, draft into a cache of its own of `num_blocks`.
StatusOr<std::unique_ptr<DraftProposer>> make_draft_proposer(const SpeculativeConfig& config,
                                                             const LoadedModel* draft,
                                                             KvCache& target_cache,
                                                             int64_t num_blocks);

}  // namespace strata
