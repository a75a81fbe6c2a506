#include "worker/engine.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <new>
#include <string>

#include "common/check.h"
#include "kernels/cuda/plan/graph_buckets.h"
#include "kernels/cuda/plan/launch_plan.h"
#include "kernels/cuda/plan/memory_plan.h"
#include "kernels/device.h"
#include "parallel/topology.h"
#include "worker/batch_broadcast.h"
#include "worker/group_plan.h"

namespace strata {
namespace {

int64_t available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit) {
    if (key == "MemAvailable:") return kb * 1024;
  }
  return int64_t{4} << 30;  // no /proc: assume a modest 4 GiB
}

// Decode-only steps run padded to CUDA-graph buckets; the KV cache then holds one more
// block than the scheduler hands out, which padding rows attend to.
bool uses_padded_decode(const EngineConfig& config) {
  return !config.device.is_cpu() && config.cuda_graphs;
}

// On a GPU: the blocks the memory plan leaves after weights (already on the device) and the
// activation reserve, capped as on the CPU; the scratch block comes out of them.
StatusOr<int64_t> device_kv_blocks(const LoadedModel& model, const EngineConfig& config) {
  const SchedulerConfig& s = config.scheduler;
  const ShardPlan& shard = model.weights.shard;
  const int64_t per_block = KvCache::bytes_per_block(model.config, shard, s.block_size);
  const int64_t scratch = uses_padded_decode(config) ? 1 : 0;
  if (config.kv_cache_bytes > 0) return config.kv_cache_bytes / per_block - scratch;
  const int64_t max_tokens = std::max<int64_t>(s.max_num_batched_tokens, s.max_num_seqs);
  const KernelReserveRequest reserve{
      .weight_dtype = model.weights.dtype, .max_tokens = max_tokens,
      .max_gemm_k = std::max({int64_t{model.config.hidden_size}, shard.q_size(model.config.head_dim),
                              shard.ffn_size()}),
      .max_seqs = s.max_num_seqs, .max_context_len = static_cast<int>(s.max_model_len),
      .num_q_heads = shard.num_heads, .num_kv_heads = shard.num_kv_heads,
      .head_dim = model.config.head_dim};
  const DeviceMemoryUse use = device_memory_use(config.device);
  STRATA_ASSIGN_OR_RETURN(
      const kernels::cuda::DeviceMemoryPlan plan,
      kernels::cuda::plan_device_memory(
          {.total_bytes = use.total_bytes, .gpu_memory_fraction = config.gpu_memory_fraction,
           .weights_bytes = use.in_use_bytes,
           .activation_bytes = LlamaModel::workspace_bytes(model.config, shard, max_tokens, s.max_num_seqs) +
                               kernel_reserve_bytes(reserve),
           .kv_block_bytes = per_block}));
  const int64_t useful = int64_t{s.max_num_seqs} * KvBlockManager::blocks_for_tokens(s.max_model_len, s.block_size);
  return std::min(useful, plan.num_kv_blocks - scratch);
}

}  // namespace

Status EngineConfig::validate() const {
  STRATA_RETURN_IF_ERROR(scheduler.validate());
  if (kv_cache_bytes < 0) return invalid_argument("`kv_cache_bytes` must be >= 0. Given: {}", kv_cache_bytes);
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

int64_t engine_kv_blocks(const ModelConfig& model, const ShardPlan& shard, const EngineConfig& config) {
  const int32_t block_size = config.scheduler.block_size;
  const int64_t per_block = KvCache::bytes_per_block(model, shard, block_size);
  if (config.kv_cache_bytes > 0) return config.kv_cache_bytes / per_block;
  const int64_t useful = int64_t{config.scheduler.max_num_seqs} *
                         KvBlockManager::blocks_for_tokens(config.scheduler.max_model_len, block_size);
  const auto budget = static_cast<int64_t>(config.kv_cache_memory_fraction *
                                           static_cast<double>(available_memory_bytes()));
  return std::min(useful, budget / per_block);
}

StatusOr<std::unique_ptr<Engine>> Engine::create(const LoadedModel& model, EngineConfig config,
                                                 ParallelContext* parallel) {
  if (config.scheduler.max_model_len <= 0 || config.scheduler.max_model_len > model.config.max_position_embeddings) {
    config.scheduler.max_model_len = model.config.max_position_embeddings;
  }
  if (config.scheduler.stop_token_ids.empty()) config.scheduler.stop_token_ids = model.stop_token_ids;
  STRATA_RETURN_IF_ERROR(config.validate());
  if (config.device != model.weights.device) {
    return invalid_argument("`device` (--device) is {} but the model's weights are on {}; load "
                            "the model with the same --device",
                            config.device.to_string(), model.weights.device.to_string());
  }
  int64_t num_blocks = 0;
  if (config.device.is_cpu()) {
    num_blocks = engine_kv_blocks(model.config, model.weights.shard, config);
  } else {
    const Topology topology = parallel != nullptr ? parallel->topology : Topology{};
    STRATA_RETURN_IF_ERROR(check_device_topology(config.device, topology.tp, topology.pp));
    const ShardPlan& sh = model.weights.shard;
    const std::string attention_error = kernels::cuda::attention_config_error(
        sh.num_heads, sh.num_kv_heads, model.config.head_dim, config.scheduler.block_size);
    if (!attention_error.empty()) {
      return invalid_argument("{} ({} on {}, --block-size {})", attention_error, model.config.name,
                              config.device.to_string(), config.scheduler.block_size);
    }
    // Selects the GPU for this thread (the one that runs every step).
    STRATA_RETURN_IF_ERROR(init_device(config.device, config.gpu_memory_fraction));
    STRATA_ASSIGN_OR_RETURN(num_blocks, device_kv_blocks(model, config));
  }
  if (parallel != nullptr && parallel->topology.world_size() > 1) {
    // Every rank must have the same block ids: the driver's count is everyone's.
    parallel->world->broadcast(&num_blocks, sizeof num_blocks, 0);
  }
  if (num_blocks < 1) {
    return invalid_argument("the KV cache holds no block of {} tokens ({} bytes each); raise "
                            "`kv_cache_bytes` or `kv_cache_memory_fraction`",
                            config.scheduler.block_size,
                            KvCache::bytes_per_block(model.config, model.weights.shard, config.scheduler.block_size));
  }
  std::unique_ptr<Engine> engine;
  try {
    engine.reset(new Engine(model, config, num_blocks, parallel));
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kResourceExhausted,
                  fmt::format("the KV cache of {} blocks ({} bytes each) does not fit {}; lower "
                              "`kv_cache_bytes` (--kv-cache-mb) or raise --gpu-memory-fraction",
                              num_blocks, KvCache::bytes_per_block(model.config, model.weights.shard,
                                                                   config.scheduler.block_size),
                              config.device.to_string()));
  }
  if (uses_padded_decode(engine->config_)) {
    const SchedulerConfig& s = engine->config_.scheduler;
    STRATA_RETURN_IF_ERROR(engine->forward_.enable_padded_decode(
        {.buckets = kernels::cuda::plan_graph_buckets(s.max_num_seqs),
         .max_model_len = static_cast<int>(s.max_model_len),
         .scratch_block = static_cast<int32_t>(num_blocks),
         .max_num_tokens = s.max_num_batched_tokens,
         .cuda_graphs = true},
        engine->cache_));
  }
  return engine;
}

Engine::Engine(const LoadedModel& model, EngineConfig config, int64_t num_blocks, ParallelContext* parallel)
    : model_(model),
      config_(std::move(config)),
      parallel_(parallel),
      watchdog_(parallel != nullptr && parallel->topology.world_size() > 1
                    ? std::make_unique<StepWatchdog>(std::chrono::milliseconds(config_.step_timeout_ms))
                    : nullptr),
      forward_(model.config, model.weights, backend_for(config_.device), parallel),
      cache_(model.config, model.weights.shard, config_.scheduler.block_size,
             num_blocks + (uses_padded_decode(config_) ? 1 : 0), config_.device),
      scheduler_(config_.scheduler, num_blocks) {}

Status Engine::add_request(Request request) {
  for (int32_t id : request.prompt_ids) {
    if (id < 0 || id >= model_.config.vocab_size) {
      return out_of_range("request {}: prompt token id {} is outside the vocabulary [0, {})",
                          request.id, id, model_.config.vocab_size);
    }
  }
  return scheduler_.add(std::move(request));
}

Engine::~Engine() {
  if (distributed()) broadcast_plan(*parallel_->world, GroupPlan{.stop = true});
}

bool Engine::abort(RequestId id) { return scheduler_.abort(id); }

// Runs the model on this rank and, in a multi-rank group, on every rank: the plan goes to
// all ranks first. Leaves the step's logits in logits_ here, or, when the last pipeline
// stage is another rank, returns the tokens it sampled.
std::optional<SampledRows> Engine::run_forward(const StepPlan& step, const ForwardBatch& batch) {
  if (!distributed()) {
    forward_.forward(batch, cache_, logits_);
    return std::nullopt;
  }
  watchdog_->begin_step();
  GroupPlan plan{.batch_words = encode_batch(batch)};
  for (const ScheduledSequence& s : step.sequences) {
    plan.sequence_ids.push_back(s.id);
    if (!announced_.insert(s.id).second) continue;
    const Sequence* seq = scheduler_.find(s.id);
    STRATA_CHECK(seq != nullptr);
    plan.new_requests.push_back({.id = s.id, .prompt_ids = seq->request.prompt_ids,
                                 .sampling = seq->request.sampling});
  }
  plan.finished_ids.swap(finished_since_plan_);
  broadcast_plan(*parallel_->world, plan);
  const Topology& t = parallel_->topology;
  // With pp stages, pp micro-batches keep every stage busy: stage 0 starts the second while
  // stage 1 runs the first. Logits of all micro-batches arrive in sequence order.
  std::vector<float> part;
  logits_.clear();
  for (const ForwardBatch& mb : split_micro_batches(batch, t.pp)) {
    forward_.forward(mb, cache_, part);
    logits_.insert(logits_.end(), part.begin(), part.end());
  }
  std::optional<SampledRows> remote;
  const bool any_sample = std::any_of(step.sequences.begin(), step.sequences.end(),
                                      [](const ScheduledSequence& s) { return s.sample; });
  if (t.last_stage_leader() != 0 && any_sample) {
    remote = receive_samples(*parallel_->world, t.last_stage_leader());
  }
  watchdog_->end_step();
  return remote;
}

Status run_engine_follower(const LoadedModel& model, const EngineConfig& config,
                           ParallelContext& parallel) {
  STRATA_RETURN_IF_ERROR(check_device_topology(model.weights.device, parallel.topology.tp,
                                               parallel.topology.pp));
  int64_t num_blocks = 0;
  parallel.world->broadcast(&num_blocks, sizeof num_blocks, 0);
  LlamaModel forward(model.config, model.weights, kernels::cpu_backend(), &parallel);
  KvCache cache(model.config, model.weights.shard, config.scheduler.block_size, num_blocks);
  StepWatchdog watchdog(std::chrono::milliseconds(config.step_timeout_ms));
  const Topology& t = parallel.topology;
  // The last stage's first TP rank samples (rank 0 samples itself when it is that rank).
  const bool samples = t.world_rank == t.last_stage_leader();
  SamplingMirror mirror;
  std::vector<float> logits, part;
  while (true) {
    const GroupPlan plan = receive_plan(*parallel.world);
    if (plan.stop) break;
    watchdog.begin_step();
    if (samples) mirror.apply(plan);
    OwnedBatch step;
    decode_batch(plan.batch_words, step);
    logits.clear();
    for (const ForwardBatch& mb : split_micro_batches(step.batch, t.pp)) {
      forward.forward(mb, cache, part);
      logits.insert(logits.end(), part.begin(), part.end());
    }
    if (samples && !logits.empty()) {
      send_samples(*parallel.world, mirror.sample(plan, step.batch, logits, model.config.vocab_size), 0);
    }
    watchdog.end_step();
  }
  return ok_status();
}

std::vector<SequenceOutput> Engine::step() {
  const auto start = std::chrono::steady_clock::now();
  const StepPlan plan = scheduler_.schedule();
  StepResult result;
  if (!plan.empty()) {
    ForwardBatch batch;
    batch.token_ids.reserve(static_cast<size_t>(plan.num_decode_tokens + plan.num_prefill_tokens));
    for (const ScheduledSequence& s : plan.sequences) {
      batch.token_ids.insert(batch.token_ids.end(), s.token_ids.begin(), s.token_ids.end());
      batch.sequences.push_back({.num_computed_tokens = s.num_computed_tokens,
                                 .num_new_tokens = static_cast<int32_t>(s.token_ids.size()),
                                 .block_table = s.block_table,
                                 .want_logits = s.sample});
    }
    std::optional<SampledRows> remote = run_forward(plan, batch);
    std::vector<std::pair<const ScheduledSequence*, Sequence*>> to_sample;
    for (const ScheduledSequence& s : plan.sequences) {
      if (!s.sample) continue;
      Sequence* seq = scheduler_.find(s.id);
      STRATA_CHECK(seq != nullptr);
      to_sample.emplace_back(&s, seq);
    }
    std::vector<SampledToken> sampled(to_sample.size());
    if (remote) {
      // The last pipeline stage sampled with its mirror of each request's state.
      STRATA_CHECK(remote->rows.size() == to_sample.size());
      for (size_t i = 0; i < sampled.size(); ++i) {
        const SampledRow& row = remote->rows[i];
        sampled[i] = {.id = row.id, .logprob = row.logprob};
        for (const wire::TopLogprob& t : row.top) sampled[i].top_logprobs.push_back({t.id, t.logprob});
      }
    } else {
      // Requests sample independently (each owns its RNG), so they sample in parallel.
      const auto vocab = static_cast<size_t>(model_.config.vocab_size);
#pragma omp parallel for schedule(dynamic) if (to_sample.size() > 1)
      for (size_t i = 0; i < to_sample.size(); ++i) {
        Sequence& seq = *to_sample[i].second;
        const std::span<const float> logits(logits_.data() + i * vocab, vocab);
        sampled[i] = sample_token(logits, seq.request.sampling, seq.request.prompt_ids,
                                  seq.output_ids, seq.rng);
      }
    }
    for (size_t i = 0; i < to_sample.size(); ++i) result.sampled[to_sample[i].first->id] = std::move(sampled[i]);
  }
  std::vector<SequenceOutput> outputs = scheduler_.update(plan, result);
  if (distributed()) {
    for (const SequenceOutput& o : outputs) {
      if (o.finished() && announced_.erase(o.id) > 0) finished_since_plan_.push_back(o.id);
    }
  }
  int64_t context_tokens = 0;
  for (const ScheduledSequence& s : plan.sequences) {
    context_tokens += s.num_computed_tokens + static_cast<int64_t>(s.token_ids.size());
  }
  last_step_ = {.num_sequences = static_cast<int32_t>(plan.sequences.size()),
                .num_decode_tokens = plan.num_decode_tokens,
                .num_prefill_tokens = plan.num_prefill_tokens,
                .num_preempted = static_cast<int32_t>(plan.preempted.size()),
                .context_tokens = context_tokens,
                .seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
  return outputs;
}

}  // namespace strata
