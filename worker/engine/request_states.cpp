#include "worker/engine/request_states.h"

#include "common/check.h"

namespace strata {

void RequestStates::apply(const StepPlan& plan) {
  for (RequestId id : plan.finished_ids) states_.erase(id);
  for (const NewRequest& r : plan.new_requests) {
    STRATA_CHECK(r.sampling.seed.has_value());
    states_.insert_or_assign(r.id, RequestState(r));
  }
  for (const ScheduledSequence& s : plan.sequences) {
    RequestState& state = at(s.id);
    state.output_ids.insert(state.output_ids.end(), s.new_token_ids.begin(), s.new_token_ids.end());
    STRATA_CHECK(s.num_kept_blocks >= 0 &&
                 static_cast<size_t>(s.num_kept_blocks) <= state.block_table.size());
    state.block_table.resize(static_cast<size_t>(s.num_kept_blocks));
    state.block_table.insert(state.block_table.end(), s.new_block_ids.begin(), s.new_block_ids.end());
    STRATA_CHECK(s.num_computed_tokens + s.num_new_tokens <=
                 state.num_tokens() + static_cast<int32_t>(s.draft_token_ids.size()));
  }
}

RequestState& RequestStates::at(RequestId id) {
  auto it = states_.find(id);
  STRATA_CHECK(it != states_.end());
  return it->second;
}

const RequestState& RequestStates::at(RequestId id) const {
  auto it = states_.find(id);
  STRATA_CHECK(it != states_.end());
  return it->second;
}

void RequestStates::append_step_tokens(const ScheduledSequence& s, std::vector<int32_t>& out) const {
  const RequestState& state = at(s.id);
  const int32_t known = state.num_tokens();
  for (int32_t i = 0; i < s.num_new_tokens; ++i) {
    const int32_t pos = s.num_computed_tokens + i;
    out.push_back(pos < known ? state.token_at(pos) : s.draft_token_ids[static_cast<size_t>(pos - known)]);
  }
}

}  // namespace strata
