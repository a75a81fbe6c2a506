// Communicator: the collectives a worker group's ranks use (all-reduce after attention
// and MLP in tensor parallelism, send/recv between pipeline stages, plan broadcast).
// Implementations: SingleRankCommunicator (one rank; every collective is the identity),
// and, in the parallel issue, MPI (CPU) and NCCL (GPU).
#pragma once

#include <cstddef>
#include <memory>

#include "kernels/tensor.h"

namespace strata {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // In-place sum over all ranks of a float buffer on this rank's device.
  virtual void all_reduce_sum(float* data, size_t count) = 0;
  // Root's bytes replace everyone else's.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
};

std::unique_ptr<Communicator> make_single_rank_communicator();

}  // namespace strata
