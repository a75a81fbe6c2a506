#include "worker/worker_options.h"


namespace strata {

WorkerServerConfig WorkerOptions::server_config() const {
  WorkerServerConfig c;
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

std::vector<std::string> WorkerOptions::to_args() const {
  WorkerOptions copy = *this;
  return config::to_args(copy);
}

}  // namespace strata
