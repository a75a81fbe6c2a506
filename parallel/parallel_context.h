// ParallelContext: one rank's place in its worker group and the communicators it talks
// through: the world, over host memory (step plans, sampled tokens, the KV block count);
// its stage's tensor-parallel group (all-reduce, all-gather) and the pipeline (activations
// to the next stage), both over the memory of the rank's device: MPI on the CPU, NCCL on
// GPUs.
#pragma once

#include <memory>

#include "common/status.h"
#include "kernels/tensor.h"
#include "parallel/communicator.h"
#include "parallel/topology.h"

namespace strata {

struct ParallelContext {
  Topology topology;
  Device device;  // where tp and pipeline buffers live: this rank's device
  std::unique_ptr<Communicator> world;
  std::unique_ptr<Communicator> tp;
  std::unique_ptr<Communicator> pipeline;

  // One rank, no MPI.
  static ParallelContext single();
  // MPI must be initialized; checks that the world has tp × pp ranks. A CUDA `device` (this
  // rank's GPU, parallel/rank_device.h) takes NCCL for tp and pipeline, and fails with a
  // message saying how to rebuild where this strata has no NCCL.
  static StatusOr<ParallelContext> mpi(int tp, int pp, Device device = {});
};

}  // namespace strata
