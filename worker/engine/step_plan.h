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
  int32_t num_new_tokens = 0;       // this step's tokens: a prefill chunk or one decode token
  // Output tokens appended since the ranks last heard of this request (the decode input).
  std::vector<int32_t> new_token_ids;
  // The block table keeps its first num_kept_blocks entries (all of them, unless the
  // sequence was preempted since) and then has new_block_ids appended.
  int32_t num_kept_blocks = 0;
  std::vector<int32_t> new_block_ids;
  bool sample = false;              // this chunk reaches the end: sample the next token
  MSGPACK_DEFINE_MAP(id, num_computed_tokens, num_new_tokens, new_token_ids, num_kept_blocks,
                     new_block_ids, sample);
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

// What the rank that samples drew for each sequence with sample == true.
struct StepResult {
  std::map<RequestId, SampledToken> sampled;
  MSGPACK_DEFINE_MAP(sampled);
};

}  // namespace strata
