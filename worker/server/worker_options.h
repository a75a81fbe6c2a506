// WorkerOptions: the settings of a worker group process. Each is defined once, on the
// component that uses it (ModelSettings, WorkerServerConfig and, inside it, EngineConfig and
// SchedulerConfig); this struct adds only what the process itself decides: its parallel
// layout, the KV-cache size in MiB and its log level. strata-worker reads them from flags
// or YAML; `strata serve` takes the same flags and hands them on.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/config_fields.h"
#include "common/log_settings.h"
#include "worker/model/model_loader.h"
#include "worker/server/worker_server.h"

namespace strata {

struct WorkerOptions {
  ModelSettings load;
  WorkerServerConfig server;
  int tp = 1;
  int pp = 1;
  // Sets EngineConfig::kv_cache_bytes (the engine counts bytes, people count MiB).
  int64_t kv_cache_mb = 0;
  LogSettings log;

  template <typename V>
  void visit_fields(V& v) {
    using config::Range;
    load.visit_fields(v);
    server.visit_fields(v);
    v("kv_cache_mb", kv_cache_mb, "KV-cache size in MiB (0 = a fraction of available memory)", Range{0, 1 << 30});
    v("tp", tp, "tensor-parallel ranks per pipeline stage (launch tp × pp ranks with mpirun)", Range{1, 1024});
    v("pp", pp, "pipeline stages", Range{1, 1024});
    log.visit_fields(v);
  }

  // The server configuration these options describe; fails on a `device` it cannot parse.
  StatusOr<WorkerServerConfig> server_config() const;
  // How to load the model: dtype, device and this rank's place in `topology`.
  StatusOr<ModelLoadOptions> load_options(const Topology& topology) const;
  // Command-line arguments that reproduce these options for strata-worker.
  std::vector<std::string> to_args() const;
};

}  // namespace strata
