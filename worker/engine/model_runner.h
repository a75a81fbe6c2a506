// ModelRunner: what every rank of a worker group runs, the driver included. It owns this
// rank's model shard forward pass, its KV cache, the kernel backend and the per-request
// state it needs to build batches and sample, and it executes step plans
// (worker/engine/step_plan.h): apply the plan's changes, run the forward pass on its pipeline
// micro-batches, and — on the one rank that samples, the last pipeline stage's first TP
// rank — sample each row that wants a token. The driver (world rank 0) gets the sampled
// tokens back, from itself or from that rank; the other ranks return nothing.
#pragma once

#include <cstdint>
#include <vector>

#include "worker/model/llama_model.h"
#include "worker/model/model_loader.h"
#include "worker/engine/request_states.h"
#include "worker/engine/step_plan.h"

namespace strata {

class ModelRunner {
 public:
  // `model` and `parallel` must outlive the runner; `parallel` is null for a one-rank group.
  // `num_cache_blocks` counts every block of the cache, a padded-decode scratch block
  // included; `cache_dtype` is what the cache stores (kernels/kv_cache_format.h).
  ModelRunner(const LoadedModel& model, ParallelContext* parallel, int block_size,
              int64_t num_cache_blocks, DType cache_dtype);

  // Precondition: every rank of the group executes the same plans in the same order.
  StepResult execute(const StepPlan& plan);

  LlamaModel& forward() { return forward_; }
  KvCache& cache() { return cache_; }
  const KvCache& cache() const { return cache_; }
  const RequestStates& requests() const { return requests_; }
  // The last step's logits, [rows that wanted one, vocab] in plan order (a sequence with
  // drafts has one row per draft and one more); empty on ranks
  // outside the last pipeline stage.
  const std::vector<float>& last_logits() const { return logits_; }
  // Seconds the last step spent in tensor-parallel collectives on this rank.
  double last_collective_seconds() const { return forward_.last_collective_seconds(); }

 private:
  bool samples_here() const;
  void build_batch(const StepPlan& plan, ForwardBatch& batch) const;
  void run_forward(const ForwardBatch& batch);
  StepResult sample(const StepPlan& plan);
  std::vector<SampledToken> sample_sequence(const ScheduledSequence& s, const float* rows,
                                            SamplerWorkspace& workspace);

  const LoadedModel& model_;
  ParallelContext* parallel_;
  LlamaModel forward_;
  KvCache cache_;
  RequestStates requests_;
  std::vector<float> logits_, micro_batch_logits_;  // [rows that want logits, vocab]
  std::vector<SamplerWorkspace> sampler_workspaces_;  // one per sampling thread
};

// Splits a step into up to `n` micro-batches of disjoint, consecutive sequences with about
// equal token counts, so pipeline stages work on different micro-batches at once. Every
// rank splits the same batch the same way. The block tables still point into `batch`.
std::vector<ForwardBatch> split_micro_batches(const ForwardBatch& batch, int n);

}  // namespace strata
