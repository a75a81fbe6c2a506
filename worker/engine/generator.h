// SequenceGenerator: one request run to completion on the batching engine, with a cache
// sized for just that request. It is what `strata generate` drives.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "worker/engine/engine.h"
#include "worker/model/model_loader.h"
#include "worker/engine/sampler.h"

namespace strata {

struct GeneratorConfig {
  // block_size, gpu_memory_fraction and cuda_graphs apply as given; the generator sizes the
  // cache, the batch (one sequence) and the step (prefill_chunk_tokens) itself, and runs on
  // the device the model's weights are on.
  EngineConfig engine;
  int prefill_chunk_tokens = 512;  // prompt tokens per forward pass

  template <typename V>
  void visit_fields(V& v) {
    using config::Range;
    v("prefill_chunk", prefill_chunk_tokens, "prompt tokens per forward pass", Range{1, 1 << 20});
    auto used = config::only(v, {"block_size", "kv_cache_dtype", "gpu_memory_fraction", "cuda_graphs"});
    engine.visit_fields(used);
  }
};

struct GenerationResult {
  std::vector<int32_t> output_ids;
  std::vector<SampledToken> tokens;  // with logprobs when asked for
  std::string finish_reason;         // "stop" (a stop id), "length" (max_tokens or context)
  double time_to_first_token_s = 0;
  double decode_seconds = 0;         // after the first token
};

class SequenceGenerator {
 public:
  SequenceGenerator(const LoadedModel& model, GeneratorConfig config = {});

  // Generates after `prompt_ids`; `on_token` sees each token as it is sampled. Stops on the
  // model's stop ids (unless ignore_eos) or params.stop_token_ids, at max_tokens, or when the
  // context is full (a sampled token needs no cache slot, so positions 0..max_len-1 are fed).
  StatusOr<GenerationResult> generate(const std::vector<int32_t>& prompt_ids,
                                      const SamplingParams& params,
                                      const std::function<void(const SampledToken&)>& on_token = {});

 private:
  const LoadedModel& model_;
  GeneratorConfig config_;
};

}  // namespace strata
