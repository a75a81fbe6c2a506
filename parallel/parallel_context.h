// ParallelContext: one rank's place in its worker group and the communicators it talks
// through: the world (plan broadcast, pipeline send/recv, logits to the driver) and its
// stage's tensor-parallel group (all-reduce, all-gather).
#pragma once

#include <memory>

#include "common/status.h"
#include "parallel/communicator.h"
#include "parallel/topology.h"

namespace strata {

struct ParallelContext {
  Topology topology;
  std::unique_ptr<Communicator> world;
  std::unique_ptr<Communicator> tp;

  // One rank, no MPI.
  static ParallelContext single();
  // MPI must be initialized; checks that the world has tp × pp ranks.
  static StatusOr<ParallelContext> mpi(int tp, int pp);
};

}  // namespace strata
