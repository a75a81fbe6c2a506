// Engine: the in-process serving loop of one worker group's driver. add_request() and
// abort() queue work; each step() is schedule → run the model on the step's concatenated
// tokens → sample → update, and returns what each request produced. `strata generate`, the
// offline benchmarks and the worker process all drive this one loop.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <vector>

#include "common/config_fields.h"
#include "common/status.h"
#include "worker/llama_model.h"
#include "worker/model_loader.h"
#include "parallel/watchdog.h"
#include "worker/group_plan.h"
#include "worker/scheduler.h"

namespace strata {

struct EngineConfig {
  SchedulerConfig scheduler;
  // KV cache size: kv_cache_bytes if > 0, else kv_cache_memory_fraction of the memory
  // available now (MemAvailable), capped to what max_num_seqs sequences of max_model_len
  // could ever use.
  int64_t kv_cache_bytes = 0;
  double kv_cache_memory_fraction = 0.3;
  // With several ranks: a step running longer than this aborts the group (a rank died or hung).
  int64_t step_timeout_ms = 120000;
  // Where the forward pass runs: the device the model's weights were loaded onto
  // (ModelLoadOptions::device). On a GPU the KV cache takes what gpu_memory_fraction of its
  // memory leaves after the weights and the activation reserve (kv_cache_bytes still wins
  // when set); logits come back to the host, where sampling stays as on the CPU.
  Device device;
  double gpu_memory_fraction = 0.9;
  // GPU: decode-only steps replay CUDA graphs, one per batch-size bucket, captured when the
  // engine is created.
  bool cuda_graphs = true;

  // The settings a worker exposes (the device and the KV-cache size it sets from its own
  // --device and --kv-cache-mb).
  template <typename V>
  void visit_fields(V& v) {
    using config::Range;
    scheduler.visit_fields(v);
    v("step_timeout_ms", step_timeout_ms, "multi-rank: a step longer than this aborts the group", Range{100, 86400000});
    v("gpu_memory_fraction", gpu_memory_fraction, "share of the GPU's memory for weights, activations and the KV cache", Range{0.01, 1.0});
    v("cuda_graphs", cuda_graphs, "GPU: replay decode steps from CUDA graphs (--no-cuda-graphs runs them eagerly)");
  }
  Status validate() const;
};

struct EngineStepStats {
  int32_t num_sequences = 0;
  int32_t num_decode_tokens = 0;
  int32_t num_prefill_tokens = 0;
  int32_t num_preempted = 0;
  int64_t context_tokens = 0;  // Σ over the sequences of positions attended (cached + new)
  double seconds = 0;
};

class Engine {
 public:
  // The engine keeps references to `model` (and `parallel`); they must outlive it. With a
  // multi-rank `parallel`, this is the driver (world rank 0): each step it broadcasts a
  // GroupPlan (worker/group_plan.h), every rank runs its shard (the others in
  // run_engine_follower), and the last pipeline stage samples and returns token ids (rank 0
  // samples itself when it is that stage). `model` is then this rank's shard.
  static StatusOr<std::unique_ptr<Engine>> create(const LoadedModel& model, EngineConfig config,
                                                  ParallelContext* parallel = nullptr);
  ~Engine();

  Status add_request(Request request);
  bool abort(RequestId id);
  // One iteration. Returns outputs of every request that produced a token, finished or
  // was aborted since the last step.
  std::vector<SequenceOutput> step();
  bool has_unfinished() const { return scheduler_.has_unfinished(); }

  SchedulerStats stats() const { return scheduler_.stats(); }
  // Seconds the last step spent in tensor-parallel collectives on this rank.
  double last_collective_seconds() const { return forward_.last_collective_seconds(); }
  const EngineStepStats& last_step() const { return last_step_; }
  int64_t num_kv_blocks() const { return cache_.num_blocks(); }
  const EngineConfig& config() const { return config_; }
  const LoadedModel& model() const { return model_; }

 private:
  Engine(const LoadedModel& model, EngineConfig config, int64_t num_blocks, ParallelContext* parallel);
  bool distributed() const { return parallel_ != nullptr && parallel_->topology.world_size() > 1; }
  std::optional<SampledRows> run_forward(const StepPlan& step, const ForwardBatch& batch);

  const LoadedModel& model_;
  EngineConfig config_;
  ParallelContext* parallel_;
  std::unique_ptr<StepWatchdog> watchdog_;
  LlamaModel forward_;
  KvCache cache_;
  Scheduler scheduler_;
  std::vector<float> logits_;
  // Multi-rank: requests whose full state the ranks have seen, and those finished since the
  // last plan (sent with the next one so the last stage drops its mirror of them).
  std::set<RequestId> announced_;
  std::vector<RequestId> finished_since_plan_;
  EngineStepStats last_step_;
};

// A non-driver rank of a worker group: receives each step's plan from the driver, runs its
// shard of the forward pass (the last stage's first TP rank samples with its mirror of the
// requests and returns the token ids), until the driver's engine is destroyed. Decides
// nothing.
Status run_engine_follower(const LoadedModel& model, const EngineConfig& config,
                           ParallelContext& parallel);

// The number of KV blocks `config` gives `model` on the CPU (see EngineConfig).
int64_t engine_kv_blocks(const ModelConfig& model, const ShardPlan& shard, const EngineConfig& config);

}  // namespace strata
