// RequestStates: what every rank of a worker group holds per request, rebuilt from the step
// plans alone (worker/engine/step_plan.h): the prompt, the output tokens the driver has told it of,
// the block table, the sampling settings and, for the rank that samples, the request's
// random stream. Plain logic, no model: the scheduler tests check that applying each plan
// reproduces the scheduler's own state.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "worker/engine/sampler.h"
#include "worker/engine/step_plan.h"

namespace strata {

struct RequestState {
  explicit RequestState(const NewRequest& r)
      : prompt_ids(r.prompt_ids), sampling(r.sampling), rng(r.sampling.seed.value_or(0)) {}

  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> output_ids;   // as the plans told them: up to the last decode input
  std::vector<int32_t> block_table;
  SamplingParams sampling;
  SamplerRng rng;                    // drawn from only on the rank that samples

  int32_t num_tokens() const {
    return static_cast<int32_t>(prompt_ids.size() + output_ids.size());
  }
  int32_t token_at(int32_t i) const {
    const auto n = static_cast<int32_t>(prompt_ids.size());
    return i < n ? prompt_ids[static_cast<size_t>(i)] : output_ids[static_cast<size_t>(i - n)];
  }
};

class RequestStates {
 public:
  // Drops finished requests, adds new ones, then applies each scheduled sequence's changes.
  // Precondition: the plans arrive in the order the scheduler made them.
  void apply(const StepPlan& plan);

  // Precondition: `id` was announced by an applied plan and has not finished.
  RequestState& at(RequestId id);
  const RequestState& at(RequestId id) const;
  bool contains(RequestId id) const { return states_.count(id) > 0; }
  size_t size() const { return states_.size(); }

  // The step's tokens for `s`: positions [num_computed_tokens, + num_new_tokens).
  void append_step_tokens(const ScheduledSequence& s, std::vector<int32_t>& out) const;

 private:
  std::map<RequestId, RequestState> states_;
};

}  // namespace strata
