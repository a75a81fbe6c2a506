// GroupPlan: what the driver (world rank 0) tells every rank of its worker group each step.
// New requests travel in full once (prompt, sampling settings with their effective seed);
// after that each step carries only the step's batch (tokens, positions, block tables, and
// which request each sequence is) and the ids that finished since the last step. The ranks
// of the last pipeline stage keep a SamplingMirror of the requests, so when the last stage
// is not rank 0 its first TP rank samples and returns token ids; the other ranks decide
// nothing.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <msgpack.hpp>

#include "common/wire.h"
#include "parallel/communicator.h"
#include "worker/batch_broadcast.h"
#include "worker/sampler.h"

namespace strata {

struct GroupPlan {
  std::vector<int32_t> batch_words;          // encode_batch(step batch)
  std::vector<uint64_t> sequence_ids;        // request id of each batch sequence
  std::vector<wire::WireRequest> new_requests;
  std::vector<uint64_t> finished_ids;
  bool stop = false;                         // leave the follower loop
  MSGPACK_DEFINE_MAP(batch_words, sequence_ids, new_requests, finished_ids, stop);
};

// The last stage's samples for the rows that wanted logits, in batch order.
struct SampledRow {
  int32_t id = 0;
  float logprob = 0.0f;
  std::vector<wire::TopLogprob> top;
  MSGPACK_DEFINE_MAP(id, logprob, top);
};
struct SampledRows {
  std::vector<SampledRow> rows;
  MSGPACK_DEFINE_MAP(rows);
};

void broadcast_plan(Communicator& world, const GroupPlan& plan);
GroupPlan receive_plan(Communicator& world);
void send_samples(Communicator& world, const SampledRows& rows, int dest);
SampledRows receive_samples(Communicator& world, int src);

// Per-request sampling state on the last stage: the same prompt, outputs, settings and RNG
// stream as the driver's scheduler has, so sampling here gives exactly the driver's tokens.
class SamplingMirror {
 public:
  void apply(const GroupPlan& plan);
  // Samples each row of `logits` ([rows, vocab]) for the plan's sequences that wanted
  // logits, in order, and records the tokens as outputs.
  SampledRows sample(const GroupPlan& plan, const ForwardBatch& batch, const std::vector<float>& logits,
                     int64_t vocab);

 private:
  struct MirrorSequence {
    std::vector<int32_t> prompt_ids, output_ids;
    SamplingParams sampling;
    SamplerRng rng{0};
  };
  std::map<uint64_t, MirrorSequence> sequences_;
};

}  // namespace strata
