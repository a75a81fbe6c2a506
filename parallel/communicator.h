// Communicator: the collectives a worker group's ranks use — all-reduce after attention
// and MLP (tensor parallelism), all-gather of vocab-parallel logits, send/recv of
// activations between pipeline stages, and broadcast of each step's plan. Implementations:
// SingleRankCommunicator (one rank; every collective is the identity), MpiCommunicator
// (CPU, parallel/mpi_communicator.h) and, with the CUDA backend, NCCL.
//
// All calls are collective over the communicator's ranks (send/recv are point to point) and
// block until this rank's part is done. Buffers live on the communicator's device.
#pragma once

#include <cstddef>
#include <memory>

namespace strata {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // In-place sum over all ranks of `count` floats.
  virtual void all_reduce_sum(float* data, size_t count) = 0;
  // Every rank contributes `count` floats; `out` receives world_size · count, rank order.
  virtual void all_gather(const float* in, size_t count, float* out) = 0;
  // Root's bytes replace everyone else's.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void send(const void* data, size_t bytes, int dest) = 0;
  virtual void recv(void* data, size_t bytes, int src) = 0;
};

std::unique_ptr<Communicator> make_single_rank_communicator();

}  // namespace strata
