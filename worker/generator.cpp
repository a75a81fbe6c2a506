#include "worker/generator.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "worker/block_pool.h"

namespace strata {

SequenceGenerator::SequenceGenerator(const LoadedModel& model, GeneratorConfig config)
    : model_(model), config_(config), forward_(model.config, model.weights) {}

StatusOr<GenerationResult> SequenceGenerator::generate(
    const std::vector<int32_t>& prompt_ids, const SamplingParams& params,
    const std::function<void(const SampledToken&)>& on_token) {
  STRATA_RETURN_IF_ERROR(params.validate());
  const ModelConfig& c = model_.config;
  const int64_t max_len = c.max_position_embeddings;
  if (prompt_ids.empty()) return invalid_argument("the prompt must hold at least one token");
  if (static_cast<int64_t>(prompt_ids.size()) > max_len) {
    return out_of_range("the prompt has {} tokens but the model's context is {} tokens; shorten it",
                        prompt_ids.size(), max_len);
  }
  for (int32_t id : prompt_ids) {
    if (id < 0 || id >= c.vocab_size) {
      return out_of_range("prompt token id {} is outside the vocabulary [0, {})", id, c.vocab_size);
    }
  }
  const int64_t positions = std::min<int64_t>(max_len, static_cast<int64_t>(prompt_ids.size()) + params.max_tokens);
  const int block_size = config_.block_size;
  const int64_t num_blocks = (positions + block_size - 1) / block_size;
  KvCache cache(c, block_size, num_blocks);
  BlockPool pool(num_blocks);
  std::vector<int32_t> block_table;
  for (int64_t i = 0; i < num_blocks; ++i) block_table.push_back(*pool.allocate());

  SamplerRng rng(params.seed.value_or(std::random_device{}()));
  GenerationResult result;
  std::vector<float> logits;
  const auto start = std::chrono::steady_clock::now();
  auto seconds_since = [](auto t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };

  // Prefill in chunks; only the last chunk's last token needs logits.
  int32_t computed = 0;
  const int32_t prompt_len = static_cast<int32_t>(prompt_ids.size());
  while (computed < prompt_len) {
    const int32_t chunk = std::min(config_.prefill_chunk_tokens, prompt_len - computed);
    ForwardBatch batch;
    batch.token_ids.assign(prompt_ids.begin() + computed, prompt_ids.begin() + computed + chunk);
    batch.sequences.push_back({.num_computed_tokens = computed, .num_new_tokens = chunk,
                               .block_table = block_table,
                               .want_logits = computed + chunk == prompt_len});
    forward_.forward(batch, cache, logits);
    computed += chunk;
  }

  std::vector<int32_t> stop_ids = params.stop_token_ids;
  if (!params.ignore_eos) stop_ids.insert(stop_ids.end(), model_.stop_token_ids.begin(), model_.stop_token_ids.end());
  std::chrono::steady_clock::time_point first_token_time;
  while (true) {
    SampledToken token = sample_token(logits, params, prompt_ids, result.output_ids, rng);
    if (result.output_ids.empty()) {
      first_token_time = std::chrono::steady_clock::now();
      result.time_to_first_token_s = seconds_since(start);
    }
    if (std::find(stop_ids.begin(), stop_ids.end(), token.id) != stop_ids.end()) {
      result.finish_reason = "stop";  // the stop id itself is not part of the output
      break;
    }
    result.output_ids.push_back(token.id);
    if (on_token) on_token(token);
    result.tokens.push_back(std::move(token));
    if (static_cast<int32_t>(result.output_ids.size()) >= params.max_tokens || computed >= max_len) {
      result.finish_reason = "length";
      break;
    }
    ForwardBatch batch;
    batch.token_ids = {result.output_ids.back()};
    batch.sequences.push_back({.num_computed_tokens = computed, .num_new_tokens = 1,
                               .block_table = block_table, .want_logits = true});
    forward_.forward(batch, cache, logits);
    ++computed;
  }
  if (!result.output_ids.empty()) result.decode_seconds = seconds_since(first_token_time);
  for (int32_t id : block_table) pool.free(id);
  return result;
}

}  // namespace strata
