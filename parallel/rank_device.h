// Which GPU each rank of a worker group uses: one GPU per rank, chosen from the rank's place
// among the group's ranks on its host (its local rank), so `mpirun` can place ranks with
// its usual mapping and each rank finds its own device without per-host settings.
#pragma once

#include "common/status.h"
#include "kernels/tensor.h"

namespace strata {

// `requested` is the --device setting. CPU: every rank runs on the CPU. CUDA with one rank:
// the device as given. CUDA with several ranks: cuda:<local_rank>, which must be visible;
// naming a device index there is refused (the ranks would share it).
StatusOr<Device> rank_device(Device requested, int world_size, int local_rank, int num_visible_gpus);

}  // namespace strata
