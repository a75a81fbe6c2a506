#include "parallel/topology.h"

namespace strata {

Status Topology::validate(int actual_world_size) const {
  if (tp < 1 || pp < 1) return invalid_argument("--tp and --pp must be >= 1. Given: {} and {}", tp, pp);
  if (tp * pp != actual_world_size) {
    return invalid_argument("the worker group has {} ranks but --tp {} × --pp {} = {}; launch with "
                            "`mpirun -np {}`",
                            actual_world_size, tp, pp, tp * pp, tp * pp);
  }
  return ok_status();
}

LayerRange stage_layers(int num_layers, int pp, int stage) {
  const int base = num_layers / pp, extra = num_layers % pp;
  const int begin = stage * base + (stage < extra ? stage : extra);
  return {begin, begin + base + (stage < extra ? 1 : 0)};
}

Status check_device_topology(Device device, int tp, int pp) {
  if (device.is_cpu() || tp * pp == 1) return ok_status();
  return unimplemented("--device {} runs one rank: a worker group of --tp {} --pp {} needs the "
                       "NCCL communicator, which parallel/ does not wire in yet. Use --tp 1 "
                       "--pp 1 with --device {}, or --device cpu for a multi-rank group",
                       device.to_string(), tp, pp, device.to_string());
}

}  // namespace strata
