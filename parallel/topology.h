// Topology: where a rank sits in a worker group of tp × pp ranks. Ranks of one pipeline
// stage form a tensor-parallel group (consecutive world ranks), so stage s holds world
// ranks [s·tp, (s+1)·tp). World rank 0 (stage 0, TP rank 0) is the driver.
#pragma once

#include "common/status.h"
#include "kernels/tensor.h"

namespace strata {

struct Topology {
  int tp = 1;
  int pp = 1;
  int world_rank = 0;

  int world_size() const { return tp * pp; }
  int tp_rank() const { return world_rank % tp; }
  int pp_stage() const { return world_rank / tp; }
  bool is_driver() const { return world_rank == 0; }
  bool is_first_stage() const { return pp_stage() == 0; }
  bool is_last_stage() const { return pp_stage() == pp - 1; }
  // The rank with the same TP rank in the next / previous stage.
  int next_stage_rank() const { return world_rank + tp; }
  int prev_stage_rank() const { return world_rank - tp; }
  // World rank of TP rank 0 in the last stage: it gathers the logits.
  int last_stage_leader() const { return (pp - 1) * tp; }

  Status validate(int actual_world_size) const;
};

// Layers [begin, end) of stage `stage` when `num_layers` are split into `pp` contiguous
// stages as evenly as possible (earlier stages take the remainder).
struct LayerRange {
  int begin = 0, end = 0;
};
LayerRange stage_layers(int num_layers, int pp, int stage);

// A worker group of several ranks communicates over MPI on host memory, so it runs on the
// CPU until an NCCL communicator is wired into parallel/: this rejects a GPU with tp or
// pp > 1, naming both settings.
Status check_device_topology(Device device, int tp, int pp);

}  // namespace strata
