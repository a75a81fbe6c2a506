// NcclCommunicator: the Communicator interface (parallel/communicator.h) over NCCL, for
// ranks that hold their tensors on GPUs (ParallelContext::mpi with a CUDA device). Built
// with STRATA_CUDA; without it (parallel/no_nccl.cpp) these return an error that says how
// to rebuild.
//
// Setup: rank 0 of the MPI communicator creates the NCCL unique id and broadcasts it over
// MPI; every rank then joins with ncclCommInitRank on its own device. Collectives are
// enqueued on this thread's kernel stream (kernels::cuda::current_stream()), so they are
// ordered after the kernels that produced their inputs, and each call waits for its
// stream, as the interface promises. Buffers are device pointers.
//
// Failure: a watchdog thread polls ncclCommGetAsyncError. On an error (a peer died, a
// network fault) it aborts the NCCL communicator, which releases any rank stuck in a
// collective, and ends the whole group (mpi_abort_group): a clean group exit, never a
// hang.
#pragma once

#include <memory>

#include "common/status.h"
#include "parallel/communicator.h"
#include "parallel/topology.h"

namespace strata {

struct NcclOptions {
  int device = 0;                // this rank's CUDA device
  int watchdog_interval_ms = 100;
};

// Over MPI_COMM_WORLD. MPI must be initialized.
StatusOr<std::unique_ptr<Communicator>> make_nccl_world_communicator(const NcclOptions& options);
// Over the TP group of this rank's pipeline stage (as make_mpi_tp_communicator).
StatusOr<std::unique_ptr<Communicator>> make_nccl_tp_communicator(const Topology& topology,
                                                                  const NcclOptions& options);

}  // namespace strata
