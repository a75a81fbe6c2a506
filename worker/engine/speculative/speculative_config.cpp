#include "worker/engine/speculative/speculative_config.h"

#include "worker/engine/speculative/model_proposer.h"
#include "worker/engine/speculative/ngram_proposer.h"

namespace strata {

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

Status SpeculativeConfig::check_group_size(int world_size) const {
  if (!uses_draft_model() || world_size <= 1) return ok_status();
  return invalid_argument("--speculative-method {} runs its draft model on one rank; a group of {} "
                          "ranks can use --speculative-method ngram", method, world_size);
}

StatusOr<std::unique_ptr<LoadedModel>> load_draft_model(const SpeculativeConfig& config,
                                                        const std::string& target_path,
                                                        const ModelLoadOptions& options) {
  STRATA_RETURN_IF_ERROR(config.validate());
  STRATA_RETURN_IF_ERROR(config.check_group_size(options.topology.world_size()));
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
