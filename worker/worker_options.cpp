#include "worker/worker_options.h"

#include "kernels/device.h"

namespace strata {

StatusOr<WorkerServerConfig> WorkerOptions::server_config() const {
  WorkerServerConfig c;
  STRATA_ASSIGN_OR_RETURN(c.engine.device, parse_device(device));
  c.engine.gpu_memory_fraction = gpu_memory_fraction;
  c.engine.cuda_graphs = cuda_graphs;
  c.router_endpoint = router;
  c.group_id = group_id;
  c.model_name = model_name;
  c.heartbeat_ms = heartbeat_ms;
  SchedulerConfig& s = c.engine.scheduler;
  s.max_num_seqs = max_num_seqs;
  s.max_num_batched_tokens = max_num_batched_tokens;
  s.block_size = block_size;
  s.max_model_len = max_model_len;
  c.engine.kv_cache_bytes = kv_cache_mb * (int64_t{1} << 20);
  c.engine.step_timeout_ms = step_timeout_ms;
  c.step_log = step_log;
  return c;
}

StatusOr<ModelLoadOptions> WorkerOptions::load_options(const Topology& topology) const {
  ModelLoadOptions o;
  o.topology = topology;
  if (!dtype.empty()) {
    o.dtype = parse_dtype(dtype);
    if (!o.dtype) return invalid_argument("`dtype` (--dtype) must be fp32, bf16 or fp16. Given: {}", dtype);
  }
  STRATA_ASSIGN_OR_RETURN(o.device, parse_device(device));
  o.gpu_memory_fraction = gpu_memory_fraction;
  return o;
}

std::vector<std::string> WorkerOptions::to_args() const {
  WorkerOptions copy = *this;
  return config::to_args(copy);
}

}  // namespace strata
