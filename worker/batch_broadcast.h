// The driver's plan for one step, as every rank of a worker group needs it: the step's
// tokens and, per sequence, its position, chunk length and block table. Rank 0 (the
// driver) decides; it broadcasts this each step and the other ranks replay it.
#pragma once

#include <cstdint>
#include <vector>

#include "parallel/communicator.h"
#include "worker/llama_model.h"

namespace strata {

// A ForwardBatch that owns its block tables (what a receiving rank rebuilds).
struct OwnedBatch {
  ForwardBatch batch;
  std::vector<std::vector<int32_t>> tables;
};

// Driver side: sends `batch` to every rank of `world`.
void broadcast_batch(Communicator& world, const ForwardBatch& batch);
// Driver side: tells every rank to leave its follower loop.
void broadcast_stop(Communicator& world);
// Follower side: receives the next batch; false when the driver said stop.
bool receive_batch(Communicator& world, OwnedBatch& out);

// Splits a step into up to `n` micro-batches of disjoint, consecutive sequences with about
// equal token counts, so pipeline stages work on different micro-batches at once. Every
// rank splits the same batch the same way. The block tables still point into `batch`.
std::vector<ForwardBatch> split_micro_batches(const ForwardBatch& batch, int n);

// Words of the encoding (exposed for tests).
std::vector<int32_t> encode_batch(const ForwardBatch& batch);
void decode_batch(const std::vector<int32_t>& words, OwnedBatch& out);

}  // namespace strata
