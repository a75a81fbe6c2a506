#include "parallel/parallel_context.h"

#include "parallel/mpi_communicator.h"

namespace strata {

ParallelContext ParallelContext::single() {
  ParallelContext c;
  c.world = make_single_rank_communicator();
  c.tp = make_single_rank_communicator();
  return c;
}

StatusOr<ParallelContext> ParallelContext::mpi(int tp, int pp) {
  ParallelContext c;
  c.topology = {.tp = tp, .pp = pp, .world_rank = mpi_world_rank()};
  STRATA_RETURN_IF_ERROR(c.topology.validate(mpi_world_size()));
  c.world = make_mpi_world_communicator();
  c.tp = make_mpi_tp_communicator(c.topology);
  return c;
}

}  // namespace strata
