// WorkerOptions: every setting of a worker group process, defined once. strata-worker
// reads them from flags or YAML; `strata serve` takes the same flags and hands them on.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/config_fields.h"
#include "worker/model_loader.h"
#include "worker/worker_server.h"

namespace strata {

struct WorkerOptions {
  std::string model = "builtin:tiny";
  std::string dtype;  // "" ⇒ the checkpoint's own
  std::string router = "tcp://127.0.0.1:5557";
  std::string group_id = "g0";
  std::string model_name;
  int threads = 0;
  int max_num_seqs = 64;
  int max_num_batched_tokens = 512;
  int block_size = 16;
  int64_t kv_cache_mb = 0;
  int64_t max_model_len = 0;
  int heartbeat_ms = 200;
  int tp = 1;
  int pp = 1;
  int64_t step_timeout_ms = 120000;
  std::string device = "cpu";
  double gpu_memory_fraction = 0.9;
  bool cuda_graphs = true;
  std::string log_level = "info";
  std::string step_log;

  template <typename V>
  void visit_fields(V& v) {
    using config::Range;
    v("model", model, "model to serve: llama2.c .bin, HF directory, or builtin:NAME");
    v("dtype", dtype, "weight dtype: fp32, bf16 or fp16 (default: the checkpoint's)");
    v("router", router, "the router's ZeroMQ endpoint");
    v("group_id", group_id, "this worker group's unique name");
    v("model_name", model_name, "model name reported to the router (default: the model's)");
    v("threads", threads, "CPU kernel threads (0 = all cores)", Range{0, 4096});
    v("max_num_seqs", max_num_seqs, "sequences running at once", Range{1, 1 << 20});
    v("max_num_batched_tokens", max_num_batched_tokens, "tokens per engine step (decode + prefill chunks)", Range{1, 1 << 24});
    v("block_size", block_size, "KV-cache positions per block", Range{1, 1024});
    v("kv_cache_mb", kv_cache_mb, "KV-cache size in MiB (0 = a fraction of available memory)", Range{0, 1 << 30});
    v("max_model_len", max_model_len, "positions one sequence may hold (0 = the model's context)", Range{0, 1 << 30});
    v("heartbeat_ms", heartbeat_ms, "how often the worker tells the router it is alive", Range{10, 60000});
    v("tp", tp, "tensor-parallel ranks per pipeline stage (launch tp × pp ranks with mpirun)", Range{1, 1024});
    v("pp", pp, "pipeline stages", Range{1, 1024});
    v("step_timeout_ms", step_timeout_ms, "multi-rank: a step longer than this aborts the group", Range{100, 86400000});
    v("device", device, "where the model runs: cpu, cuda or cuda:N (needs a build with -DSTRATA_CUDA=ON)");
    v("gpu_memory_fraction", gpu_memory_fraction, "share of the GPU's memory for weights, activations and the KV cache", Range{0.01, 1.0});
    v("cuda_graphs", cuda_graphs, "GPU: replay decode steps from CUDA graphs (--no-cuda-graphs runs them eagerly)");
    v("log_level", log_level, "trace, debug, info, warn or error");
    v("step_log", step_log, "write one CSV line per engine step here (for `strata simulate --fit-steps`)");
  }

  // The server configuration these options describe; fails on a `device` it cannot parse.
  StatusOr<WorkerServerConfig> server_config() const;
  // How to load the model: dtype, device and this rank's place in `topology`.
  StatusOr<ModelLoadOptions> load_options(const Topology& topology) const;
  // Command-line arguments that reproduce these options for strata-worker.
  std::vector<std::string> to_args() const;
};

}  // namespace strata
