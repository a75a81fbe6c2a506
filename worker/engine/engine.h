// Engine: the serving loop of one worker group's driver (world rank 0). add_request() and
// abort() queue work; each step() reads as schedule → broadcast → execute → update: the
// scheduler makes the step plan (worker/engine/step_plan.h), a multi-rank group's other ranks get
// it (worker/engine/plan_channel.h), every rank's ModelRunner executes it (the one that samples
// returns the tokens), and the scheduler applies them. `strata generate`, the offline
// benchmarks and the worker process all drive this one loop; the group's other ranks run
// run_engine_follower.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"
#include "parallel/watchdog.h"
#include "worker/engine/engine_config.h"
#include "worker/model/model_loader.h"
#include "worker/engine/model_runner.h"
#include "worker/engine/scheduler.h"

namespace strata {

struct EngineStepStats {
  int32_t num_sequences = 0;
  int32_t num_decode_tokens = 0;
  int32_t num_prefill_tokens = 0;
  int32_t num_preempted = 0;
  int32_t num_draft_tokens = 0;    // speculative rows verified this step (part of decode tokens)
  int64_t context_tokens = 0;  // Σ over the sequences of positions attended (cached + new)
  double seconds = 0;
};

class Engine {
 public:
  // The engine keeps references to `model` (and `parallel`); they must outlive it. With a
  // multi-rank `parallel` this is the driver, `model` is this rank's shard, and every other
  // rank must be in run_engine_follower. `draft` is the draft model of
  // config.speculative's method (load_draft_model), kept by reference too; one-rank groups only.
  static StatusOr<std::unique_ptr<Engine>> create(const LoadedModel& model, EngineConfig config,
                                                  ParallelContext* parallel = nullptr,
                                                  const LoadedModel* draft = nullptr);
  ~Engine();

  Status add_request(Request request);
  bool abort(RequestId id);
  // One iteration. Returns outputs of every request that produced a token, finished or
  // was aborted since the last step.
  std::vector<SequenceOutput> step();
  bool has_unfinished() const { return scheduler_.has_unfinished(); }
  std::vector<RequestId> unfinished_ids() const { return scheduler_.unfinished_ids(); }

  SchedulerStats stats() const { return scheduler_.stats(); }
  // Seconds the last step spent in tensor-parallel collectives on this rank.
  double last_collective_seconds() const { return runner_->last_collective_seconds(); }
  const EngineStepStats& last_step() const { return last_step_; }
  int64_t num_kv_blocks() const { return scheduler_.blocks().num_total(); }
  DType kv_cache_dtype() const { return runner_->cache().dtype(); }
  const EngineConfig& config() const { return config_; }
  const LoadedModel& model() const { return model_; }

 private:
  Engine(const LoadedModel& model, EngineConfig config, ParallelContext* parallel,
         int64_t num_blocks, std::unique_ptr<ModelRunner> runner,
         std::unique_ptr<DraftProposer> proposer);
  bool distributed() const { return parallel_ != nullptr && parallel_->topology.world_size() > 1; }
  StepResult execute(const StepPlan& plan);
  void record_step(const StepPlan& plan, double seconds);

  const LoadedModel& model_;
  EngineConfig config_;
  ParallelContext* parallel_;
  std::unique_ptr<StepWatchdog> watchdog_;  // multi-rank groups only
  Scheduler scheduler_;
  std::unique_ptr<ModelRunner> runner_;
  std::unique_ptr<DraftProposer> proposer_;  // speculative decoding, when on
  EngineStepStats last_step_;
};

// A non-driver rank of a worker group: `while (receive(plan)) execute(plan)` until the
// driver's engine is destroyed. Decides nothing.
Status run_engine_follower(const LoadedModel& model, EngineConfig config, ParallelContext& parallel);

}  // namespace strata
