#include "worker/engine/engine.h"

#include <chrono>
#include <new>
#include <string>

#include <spdlog/spdlog.h>

#include "common/check.h"
#include "kernels/device.h"
#include "kernels/device_plan.h"
#include "worker/engine/kv_capacity.h"
#include "worker/engine/plan_channel.h"
#include "worker/kv/kv_cache.h"

namespace strata {
namespace {

bool is_multi_rank(const ParallelContext* parallel) {
  return parallel != nullptr && parallel->topology.world_size() > 1;
}

// Fills in what the model decides and checks the rest, the same way on every rank.
Status normalize(const LoadedModel& model, EngineConfig& config) {
  SchedulerConfig& s = config.scheduler;
  if (s.max_model_len <= 0 || s.max_model_len > model.config.max_position_embeddings) {
    s.max_model_len = model.config.max_position_embeddings;
  }
  if (s.stop_token_ids.empty()) s.stop_token_ids = model.stop_token_ids;
  STRATA_RETURN_IF_ERROR(config.validate());
  if (config.device != model.weights.device) {
    return invalid_argument("`device` (--device) is {} but the model's weights are on {}; load "
                            "the model with the same --device",
                            config.device.to_string(), model.weights.device.to_string());
  }
  return ok_status();
}

// A GPU: the attention shapes it supports and, in a multi-rank group, communicators on the
// same device; then selects it for this thread (the one that runs every step).
Status prepare_device(const LoadedModel& model, EngineConfig& config, const ParallelContext* parallel) {
  if (is_multi_rank(parallel) && parallel->device != config.device) {
    return invalid_argument("this rank's engine runs on {} but its group communicates on {}; "
                            "build the ParallelContext for the rank's device (rank_device)",
                            config.device.to_string(), parallel->device.to_string());
  }
  if (config.device.is_cpu()) return ok_status();
  if (is_multi_rank(parallel) && config.cuda_graphs) {
    // Captured NCCL collectives are untested here: multi-GPU groups run every step eagerly.
    spdlog::info("{}: CUDA graphs are off in a multi-rank group", config.device.to_string());
    config.cuda_graphs = false;
  }
  const ShardPlan& sh = model.weights.shard;
  const std::string attention_error = attention_config_error(
      config.device, sh.num_heads, sh.num_kv_heads, model.config.head_dim, config.scheduler.block_size);
  if (!attention_error.empty()) {
    return invalid_argument("{} ({} on {}, --block-size {})", attention_error, model.config.name,
                            config.device.to_string(), config.scheduler.block_size);
  }
  return init_device(config.device, config.gpu_memory_fraction);
}

// The driver sizes the cache; every rank must have the same block ids, so its count is
// everyone's. A draft model with a cache of its own (`draft_block_bytes` a block) takes its
// share of the same budget.
StatusOr<int64_t> agree_on_kv_blocks(const LoadedModel& model, const EngineConfig& config,
                                     ParallelContext* parallel, int64_t draft_block_bytes) {
  int64_t num_blocks = 0;
  if (parallel == nullptr || parallel->topology.is_driver()) {
    STRATA_ASSIGN_OR_RETURN(num_blocks, schedulable_kv_blocks(model, config));
    const int64_t target_block_bytes = kv_block_bytes(model, config);
    num_blocks = num_blocks * target_block_bytes / (target_block_bytes + draft_block_bytes);
  }
  if (is_multi_rank(parallel)) parallel->world->broadcast(&num_blocks, sizeof num_blocks, 0);
  if (num_blocks < 1) {
    return invalid_argument("the KV cache holds no block of {} tokens ({} bytes each); raise "
                            "`kv_cache_bytes` or `kv_cache_memory_fraction`",
                            config.scheduler.block_size, kv_block_bytes(model, config));
  }
  return num_blocks;
}

// What the driver and the other ranks all do before their first step: the same config, the
// same device preparation, the same cache. Returns the scheduler's block count in num_blocks.
StatusOr<std::unique_ptr<ModelRunner>> make_runner(const LoadedModel& model, EngineConfig& config,
                                                   ParallelContext* parallel, int64_t& num_blocks,
                                                   int64_t draft_block_bytes = 0) {
  STRATA_RETURN_IF_ERROR(normalize(model, config));
  STRATA_RETURN_IF_ERROR(prepare_device(model, config, parallel));
  STRATA_ASSIGN_OR_RETURN(num_blocks, agree_on_kv_blocks(model, config, parallel, draft_block_bytes));
  const bool padded = uses_padded_decode(config);
  std::unique_ptr<ModelRunner> runner;
  try {
    runner = std::make_unique<ModelRunner>(model, parallel, config.scheduler.block_size,
                                           num_blocks + (padded ? 1 : 0), kv_dtype(model, config));
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kResourceExhausted,
                  fmt::format("the KV cache of {} blocks ({} bytes each) does not fit {}; lower "
                              "`kv_cache_bytes` (--kv-cache-mb) or raise --gpu-memory-fraction",
                              num_blocks, kv_block_bytes(model, config),
                              config.device.to_string()));
  }
  if (padded) {
    const SchedulerConfig& s = config.scheduler;
    STRATA_RETURN_IF_ERROR(runner->forward().enable_padded_decode(
        {.buckets = decode_graph_buckets(s.max_num_seqs),
         .max_model_len = static_cast<int>(s.max_model_len),
         .scratch_block = static_cast<int32_t>(num_blocks),
         .max_num_tokens = s.max_num_batched_tokens,
         .cuda_graphs = true},
        runner->cache()));
  }
  return runner;
}

// The draft model of a speculative method that has one: a one-rank group, the target's
// vocabulary and device. Returns the bytes a block of its own cache takes (0 when it shares
// the target's).
StatusOr<int64_t> check_draft(const LoadedModel& model, const EngineConfig& config,
                              const ParallelContext* parallel, const LoadedModel* draft) {
  const SpeculativeConfig& spec = config.speculative;
  if (!spec.uses_draft_model()) return int64_t{0};
  STRATA_RETURN_IF_ERROR(spec.check_group_size(parallel != nullptr ? parallel->topology.world_size() : 1));
  if (draft == nullptr) return invalid_argument("--speculative-method {}: no draft model was loaded", spec.method);
  if (draft->config.vocab_size != model.config.vocab_size) {
    return invalid_argument("--speculative-model {} has a vocabulary of {} tokens but --model has {}; "
                            "the draft must share the target's tokenizer", spec.model,
                            draft->config.vocab_size, model.config.vocab_size);
  }
  if (draft->weights.device != model.weights.device) {
    return invalid_argument("the draft model is on {} but the target on {}",
                            draft->weights.device.to_string(), model.weights.device.to_string());
  }
  if (spec.method == "self-quantized") return int64_t{0};
  const std::optional<DType> dtype = config.kv_dtype(draft->weights.dtype);
  if (!dtype) return int64_t{0};  // validate() names the field
  return KvCache::bytes_per_block(draft->config, draft->weights.shard, config.scheduler.block_size, *dtype);
}

}  // namespace

Status EngineConfig::validate() const {
  STRATA_RETURN_IF_ERROR(scheduler.validate());
  STRATA_RETURN_IF_ERROR(speculative.validate());
  if (kv_cache_bytes < 0) return invalid_argument("`kv_cache_bytes` must be >= 0. Given: {}", kv_cache_bytes);
  STRATA_RETURN_IF_ERROR(validate_kv_cache_dtype());
  if (!(kv_cache_memory_fraction > 0.0 && kv_cache_memory_fraction <= 0.95)) {
    return invalid_argument("`kv_cache_memory_fraction` must be in (0, 0.95]. Given: {}",
                            kv_cache_memory_fraction);
  }
  if (!(gpu_memory_fraction > 0.0 && gpu_memory_fraction <= 1.0)) {
    return invalid_argument("`gpu_memory_fraction` (--gpu-memory-fraction) must be in (0, 1]. "
                            "Given: {}", gpu_memory_fraction);
  }
  return ok_status();
}

std::optional<DType> resolve_kv_cache_dtype(std::string_view name, DType weights_dtype) {
  if (name == "auto") return weights_dtype;
  if (name == "int8") return DType::kI8;
  const std::optional<DType> dtype = parse_dtype(name);
  if (dtype && *dtype != DType::kF32 && *dtype != DType::kBF16 && *dtype != DType::kF16) return std::nullopt;
  return dtype;
}

Status EngineConfig::validate_kv_cache_dtype() const {
  if (kv_dtype(DType::kF32)) return ok_status();
  return invalid_argument("`kv_cache_dtype` (--kv-cache-dtype) must be auto, bf16, fp16, fp32 or "
                          "int8. Given: {}", kv_cache_dtype);
}

std::optional<DType> EngineConfig::kv_dtype(DType weights_dtype) const {
  return resolve_kv_cache_dtype(kv_cache_dtype, weights_dtype);
}

StatusOr<std::unique_ptr<Engine>> Engine::create(const LoadedModel& model, EngineConfig config,
                                                 ParallelContext* parallel, const LoadedModel* draft) {
  STRATA_RETURN_IF_ERROR(config.speculative.validate());
  STRATA_ASSIGN_OR_RETURN(const int64_t draft_block_bytes, check_draft(model, config, parallel, draft));
  int64_t num_blocks = 0;
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<ModelRunner> runner,
                          make_runner(model, config, parallel, num_blocks, draft_block_bytes));
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<DraftProposer> proposer,
                          make_draft_proposer(config.speculative, draft, runner->cache(), num_blocks));
  return std::unique_ptr<Engine>(new Engine(model, std::move(config), parallel, num_blocks,
                                            std::move(runner), std::move(proposer)));
}

Engine::Engine(const LoadedModel& model, EngineConfig config, ParallelContext* parallel,
               int64_t num_blocks, std::unique_ptr<ModelRunner> runner,
               std::unique_ptr<DraftProposer> proposer)
    : model_(model),
      config_(std::move(config)),
      parallel_(parallel),
      watchdog_(is_multi_rank(parallel)
                    ? std::make_unique<StepWatchdog>(std::chrono::milliseconds(config_.step_timeout_ms))
                    : nullptr),
      scheduler_(config_.scheduler, num_blocks),
      runner_(std::move(runner)),
      proposer_(std::move(proposer)) {
  scheduler_.set_proposer(proposer_.get());
}

Engine::~Engine() {
  if (distributed()) broadcast_stop(*parallel_->world);
}

Status Engine::add_request(Request request) {
  for (int32_t id : request.prompt_ids) {
    if (id < 0 || id >= model_.config.vocab_size) {
      return out_of_range("request {}: prompt token id {} is outside the vocabulary [0, {})",
                          request.id, id, model_.config.vocab_size);
    }
  }
  return scheduler_.add(std::move(request));
}

bool Engine::abort(RequestId id) { return scheduler_.abort(id); }

std::vector<SequenceOutput> Engine::step() {
  const auto start = std::chrono::steady_clock::now();
  const StepPlan plan = scheduler_.schedule();
  const StepResult result = plan.empty() ? StepResult{} : execute(plan);
  std::vector<SequenceOutput> outputs = scheduler_.update(plan, result);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  scheduler_.observe_step(plan, outputs, seconds);
  record_step(plan, seconds);
  return outputs;
}

// Every rank executes the plan; the driver sends it to the others first.
StepResult Engine::execute(const StepPlan& plan) {
  if (!distributed()) return runner_->execute(plan);
  watchdog_->begin_step();
  broadcast_plan(*parallel_->world, plan);
  StepResult result = runner_->execute(plan);
  watchdog_->end_step();
  return result;
}

void Engine::record_step(const StepPlan& plan, double seconds) {
  int64_t context_tokens = 0;
  int32_t num_draft_tokens = 0;
  for (const ScheduledSequence& s : plan.sequences) {
    context_tokens += s.num_computed_tokens + s.num_new_tokens;
    num_draft_tokens += static_cast<int32_t>(s.draft_token_ids.size());
  }
  last_step_ = {.num_sequences = static_cast<int32_t>(plan.sequences.size()),
                .num_decode_tokens = plan.num_decode_tokens,
                .num_prefill_tokens = plan.num_prefill_tokens,
                .num_preempted = static_cast<int32_t>(plan.preempted.size()),
                .num_draft_tokens = num_draft_tokens,
                .context_tokens = context_tokens,
                .seconds = seconds};
}

Status run_engine_follower(const LoadedModel& model, EngineConfig config, ParallelContext& parallel) {
  int64_t num_blocks = 0;
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<ModelRunner> runner, make_runner(model, config, &parallel, num_blocks));
  StepWatchdog watchdog(std::chrono::milliseconds(config.step_timeout_ms));
  while (std::optional<StepPlan> plan = receive_plan(*parallel.world)) {
    watchdog.begin_step();
    runner->execute(*plan);
    watchdog.end_step();
  }
  return ok_status();
}

}  // namespace strata
