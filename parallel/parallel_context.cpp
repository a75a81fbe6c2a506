#include "parallel/parallel_context.h"

#include "parallel/mpi_communicator.h"
#include "parallel/nccl_communicator.h"

namespace strata {

ParallelContext ParallelContext::single() {
  ParallelContext c;
  c.world = make_single_rank_communicator();
  c.tp = make_single_rank_communicator();
  c.pipeline = make_single_rank_communicator();
  return c;
}

StatusOr<ParallelContext> ParallelContext::mpi(int tp, int pp, Device device) {
  ParallelContext c;
  c.topology = {.tp = tp, .pp = pp, .world_rank = mpi_world_rank()};
  STRATA_RETURN_IF_ERROR(c.topology.validate(mpi_world_size()));
  c.device = device;
  c.world = make_mpi_world_communicator();
  if (device.is_cpu()) {
    c.tp = make_mpi_tp_communicator(c.topology);
    c.pipeline = make_mpi_world_communicator();
    return c;
  }
  const NcclOptions options{.device = device.index};
  STRATA_ASSIGN_OR_RETURN(c.tp, make_nccl_tp_communicator(c.topology, options));
  STRATA_ASSIGN_OR_RETURN(c.pipeline, make_nccl_world_communicator(options));
  return c;
}

}  // namespace strata
