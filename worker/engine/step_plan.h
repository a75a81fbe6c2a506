// StepPlan: the worker group's one contract. The driver's scheduler (worker/engine/scheduler.h)
// makes one per step; rank 0 broadcasts it as it is (worker/engine/plan_channel.h) and every rank's
// ModelRunner (worker/engine/model_runner.h) executes it. Like vLLM v1's scheduler output it
// carries each request in full only once, when first scheduled, and after that only what
// changed: the output tokens the ranks have not seen, the blocks appended to (or, after a
// preemption, replacing) its block table, and which requests are gone. A RequestStates
// (worker/engine/request_states.h) applying the plans in order holds exactly what the scheduler
// holds: every request's tokens and block table.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include <msgpack.hpp>

#include "common/wire.h"  // SamplingParams on the wire
#include "worker/engine/sequence.h"

namespace strata {

// A request the ranks have not seen: its prompt and its sampling settings, the effective
// seed included, so the rank that samples draws exactly the stream one rank alone would.
struct NewRequest {
  RequestId id = 0;
  std::vector<int32_t> prompt_ids;
  SamplingParams sampling;
  MSGPACK_DEFINE_MAP(id, prompt_ids, sampling);
};

// One sequence's share of a step, as a change to what the ranks hold for it.
struct ScheduledSequence {
  RequestId id = 0;
  int32_t num_computed_tokens = 0;  // positions already cached
  // This step's tokens: a prefill chunk, one decode token, or a decode token followed by
  // its draft tokens.
  int32_t num_new_tokens = 0;
  // Output tokens appended since the ranks last heard of this request (the decode input).
  std::vector<int32_t> new_token_ids;
  // The block table keeps its first num_kept_blocks entries (all of them, unless the
  // sequence was preempted since) and then has new_block_ids appended.
  int32_t num_kept_blocks = 0;
  std::vector<int32_t> new_block_ids;
  bool sample = false;              // this chunk reaches the end: sample the next token
  // Speculative decoding: tokens a proposer guessed would follow the decode token. They run
  // as the step's last draft_token_ids.size() query rows (positions past the sequence's
  // tokens); the rank that samples verifies them against the target's logits at every row.
  std::vector<int32_t> draft_token_ids;
  int32_t num_logit_rows() const { return sample ? 1 + static_cast<int32_t>(draft_token_ids.size()) : 0; }
  MSGPACK_DEFINE_MAP(id, num_computed_tokens, num_new_tokens, new_token_ids, num_kept_blocks,
                     new_block_ids, sample, draft_token_ids);
};

struct StepPlan {
  std::vector<RequestId> finished_ids;       // gone since the last plan: drop their state
  std::vector<NewRequest> new_requests;      // first scheduled in this plan
  std::vector<ScheduledSequence> sequences;  // decodes first, then prefill chunks
  std::vector<RequestId> preempted;          // moved back to waiting this step
  int32_t num_decode_tokens = 0;
  int32_t num_prefill_tokens = 0;
  bool empty() const { return sequences.empty(); }
  MSGPACK_DEFINE_MAP(finished_ids, new_requests, sequences, preempted, num_decode_tokens,
                     num_prefill_tokens);
};

// What the rank that samples drew for each sequence with sample == true: one token, or with
// draft tokens the accepted drafts followed by the target's own next token.
struct StepResult {
  std::map<RequestId, std::vector<SampledToken>> sampled;
  MSGPACK_DEFINE_MAP(sampled);
};

}  // namespace strata
