#include "worker/server/worker_options.h"

#include "common/transport_key.h"
#include "kernels/device.h"

namespace strata {

StatusOr<WorkerServerConfig> WorkerOptions::server_config() const {
  WorkerServerConfig c = server;
  STRATA_ASSIGN_OR_RETURN(c.engine.device, parse_device(load.device));
  c.engine.kv_cache_bytes = kv_cache_mb * (int64_t{1} << 20);
  if (!c.transport_key_file.empty()) {  // a bad key file fails before the model loads
    STRATA_RETURN_IF_ERROR(load_transport_key(c.transport_key_file).status());
  }
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
