#include "worker/server/worker_options.h"

#include "kernels/device.h"

namespace strata {

StatusOr<WorkerServerConfig> WorkerOptions::server_config() const {
  WorkerServerConfig c = server;
  STRATA_ASSIGN_OR_RETURN(c.engine.device, parse_device(load.device));
  c.engine.kv_cache_bytes = kv_cache_mb * (int64_t{1} << 20);
  return c;
}

StatusOr<ModelLoadOptions> WorkerOptions::load_options(const Topology& topology) const {
  return load.load_options(topology, server.engine.gpu_memory_fraction);
}

std::vector<std::string> WorkerOptions::to_args() const {
  WorkerOptions copy = *this;
  return config::to_args(copy);
}

}  // namespace strata
