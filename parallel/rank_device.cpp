#include "parallel/rank_device.h"

namespace strata {

StatusOr<Device> rank_device(Device requested, int world_size, int local_rank, int num_visible_gpus) {
  if (requested.is_cpu() || world_size == 1) return requested;
  if (requested.index != 0) {
    return invalid_argument("--device {} with a worker group of {} ranks: each rank takes the GPU "
                            "of its local rank (cuda:0, cuda:1, ... on each host); pass --device "
                            "cuda and choose the GPUs with CUDA_VISIBLE_DEVICES",
                            requested.to_string(), world_size);
  }
  if (local_rank >= num_visible_gpus) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("rank {} on this host needs GPU cuda:{}, but {} {} visible; run at "
                              "most {} ranks per host (mpirun --map-by ppr:{}:node) or make more "
                              "GPUs visible (CUDA_VISIBLE_DEVICES)",
                              local_rank, local_rank, num_visible_gpus,
                              num_visible_gpus == 1 ? "is" : "are", num_visible_gpus,
                              num_visible_gpus));
  }
  return Device{.type = DeviceType::kCuda, .index = local_rank};
}

}  // namespace strata
