// MpiCommunicator: Communicator over an MPI communicator (Open MPI on CPUs). The world
// communicator is split into the TP group of each pipeline stage; pipeline send/recv and
// the plan broadcast use the world.
#pragma once

#include <memory>

#include "common/status.h"
#include "parallel/communicator.h"
#include "parallel/topology.h"

namespace strata {

// MPI_Init_thread once per process (MPI_THREAD_FUNNELED); safe to call again.
Status mpi_initialize(int* argc, char*** argv);
void mpi_finalize();
bool mpi_is_initialized();
// World rank and size (0 and 1 before initialization).
int mpi_world_rank();
int mpi_world_size();
// This rank's index among the world's ranks on the same host (0 before initialization).
int mpi_local_rank();
// Ends the whole group at once: a rank that fails must not leave the others waiting.
[[noreturn]] void mpi_abort_group(int exit_code);

std::unique_ptr<Communicator> make_mpi_world_communicator();
// The TP group of this rank's pipeline stage.
std::unique_ptr<Communicator> make_mpi_tp_communicator(const Topology& topology);

}  // namespace strata
