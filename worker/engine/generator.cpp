#include "worker/engine/generator.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "worker/engine/kv_capacity.h"

namespace strata {

SequenceGenerator::SequenceGenerator(const LoadedModel& model, GeneratorConfig config)
    : model_(model), config_(config) {}

StatusOr<GenerationResult> SequenceGenerator::generate(
    const std::vector<int32_t>& prompt_ids, const SamplingParams& params,
    const std::function<void(const SampledToken&)>& on_token) {
  STRATA_RETURN_IF_ERROR(params.validate());
  const int64_t max_len = model_.config.max_position_embeddings;
  // Enough cache for this one request's positions, and one block of slack for the check
  // that a prompt plus one token fits.
  const int64_t positions = std::min<int64_t>(max_len, static_cast<int64_t>(prompt_ids.size()) + params.max_tokens);
  EngineConfig config = config_.engine;
  const int32_t block_size = config.scheduler.block_size;
  config.scheduler.max_num_batched_tokens = config_.prefill_chunk_tokens;
  config.scheduler.max_num_seqs = 1;
  config.scheduler.watermark = 0.0;
  config.device = model_.weights.device;
  // One more block when decode runs padded on a GPU: the padding rows' scratch block.
  const int64_t scratch_blocks = !config.device.is_cpu() && config.cuda_graphs ? 1 : 0;
  STRATA_RETURN_IF_ERROR(config.validate_kv_cache_dtype());
  config.kv_cache_bytes = kv_block_bytes(model_, config) *
                          (KvBlockManager::blocks_for_tokens(positions, block_size) + 1 +
                           scratch_blocks);
  STRATA_ASSIGN_OR_RETURN(auto engine, Engine::create(model_, config));

  SamplingParams seeded = params;
  if (!seeded.seed) seeded.seed = std::random_device{}();
  STRATA_RETURN_IF_ERROR(engine->add_request({.id = 1, .prompt_ids = prompt_ids, .sampling = seeded}));

  GenerationResult result;
  const auto start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point first_token_time;
  auto seconds_since = [](auto t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  while (engine->has_unfinished()) {
    for (SequenceOutput& out : engine->step()) {
      for (SampledToken& token : out.new_tokens) {
        if (result.output_ids.empty()) {
          first_token_time = std::chrono::steady_clock::now();
          result.time_to_first_token_s = seconds_since(start);
        }
        result.output_ids.push_back(token.id);
        if (on_token) on_token(token);
        result.tokens.push_back(std::move(token));
      }
      if (out.finished()) result.finish_reason = std::string(finish_reason_name(out.finish_reason));
    }
  }
  if (result.output_ids.empty()) {
    result.time_to_first_token_s = seconds_since(start);
  } else {
    result.decode_seconds = seconds_since(first_token_time);
  }
  return result;
}

}  // namespace strata
