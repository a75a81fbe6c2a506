#include "tools/sim/profile.h"

#include <algorithm>

namespace strata::sim {

StatusOr<std::vector<StepSample>> profile_engine(Engine& engine, const std::vector<SimRequest>& workload,
                                                 const ProfileOptions& options) {
  if (workload.empty()) return invalid_argument("profiling needs a workload (a trace with at least one row)");
  const int32_t vocab = engine.model().config.vocab_size;
  std::vector<StepSample> samples;
  RequestId next_id = 1;
  size_t next_shape = 0;
  for (int concurrency : options.concurrency) {
    if (concurrency < 1) return out_of_range("profiling concurrency must be >= 1, got {}", concurrency);
    // Enough requests that most steps run at the level's concurrency, not in its ramp.
    const int total = std::max(options.requests_per_level, 2 * concurrency);
    int submitted = 0, in_flight = 0, steps = 0;
    while (submitted < total || in_flight > 0) {
      while (in_flight < concurrency && submitted < total) {
        const SimRequest& shape = workload[next_shape++ % workload.size()];
        Request r{.id = next_id++};
        for (int32_t i = 0; i < shape.prompt_tokens; ++i) r.prompt_ids.push_back(static_cast<int32_t>((i * 7919 + r.id) % vocab));
        r.sampling.temperature = 0;
        r.sampling.ignore_eos = true;
        r.sampling.max_tokens = shape.max_tokens;
        if (shape.output_tokens < shape.max_tokens) r.sampling.stop_after_tokens = shape.output_tokens;
        STRATA_RETURN_IF_ERROR(engine.add_request(std::move(r)));
        ++submitted;
        ++in_flight;
      }
      for (const SequenceOutput& o : engine.step()) in_flight -= o.finished() ? 1 : 0;
      const EngineStepStats& s = engine.last_step();
      if (s.num_sequences == 0 || steps++ < options.warmup_steps) continue;
      samples.push_back({.shape = {.prefill_tokens = s.num_prefill_tokens,
                                   .decode_sequences = s.num_decode_tokens,
                                   .context_tokens = s.context_tokens},
                         .seconds = s.seconds});
    }
  }
  return samples;
}

}  // namespace strata::sim
