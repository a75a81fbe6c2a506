// One step's batch as the ranks of a worker group exchange it (inside worker/group_plan.h's
// GroupPlan): the tokens and, per sequence, its position, chunk length and block table,
// as flat int32 words; and its split into pipeline micro-batches.
#pragma once

#include <cstdint>
#include <vector>

#include "worker/llama_model.h"

namespace strata {

// A ForwardBatch that owns its block tables (what a receiving rank rebuilds).
struct OwnedBatch {
  ForwardBatch batch;
  std::vector<std::vector<int32_t>> tables;
};

// Splits a step into up to `n` micro-batches of disjoint, consecutive sequences with about
// equal token counts, so pipeline stages work on different micro-batches at once. Every
// rank splits the same batch the same way. The block tables still point into `batch`.
std::vector<ForwardBatch> split_micro_batches(const ForwardBatch& batch, int n);

// Words of the encoding (exposed for tests).
std::vector<int32_t> encode_batch(const ForwardBatch& batch);
void decode_batch(const std::vector<int32_t>& words, OwnedBatch& out);

}  // namespace strata
