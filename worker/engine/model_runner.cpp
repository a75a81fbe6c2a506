#include "worker/engine/model_runner.h"

#include <omp.h>

#include <algorithm>

#include "common/check.h"
#include "kernels/device.h"
#include "worker/engine/plan_channel.h"

namespace strata {

ModelRunner::ModelRunner(const LoadedModel& model, ParallelContext* parallel, int block_size,
                         int64_t num_cache_blocks, DType cache_dtype)
    : model_(model),
      parallel_(parallel),
      forward_(model.config, model.weights, backend_for(model.weights.device), parallel),
      cache_(model.config, model.weights.shard, block_size, num_cache_blocks, cache_dtype,
             model.weights.device) {}

bool ModelRunner::samples_here() const {
  return parallel_ == nullptr || parallel_->topology.world_rank == parallel_->topology.last_stage_leader();
}

void ModelRunner::build_batch(const StepPlan& plan, ForwardBatch& batch) const {
  batch.token_ids.reserve(static_cast<size_t>(plan.num_decode_tokens + plan.num_prefill_tokens));
  for (const ScheduledSequence& s : plan.sequences) {
    requests_.append_step_tokens(s, batch.token_ids);
    batch.sequences.push_back({.num_computed_tokens = s.num_computed_tokens,
                               .num_new_tokens = s.num_new_tokens,
                               .block_table = requests_.at(s.id).block_table,
                               .num_logit_rows = s.num_logit_rows()});
  }
}

// With pp stages, pp micro-batches keep every stage busy: stage 0 starts the second while
// stage 1 runs the first. Logits of all micro-batches arrive in sequence order.
void ModelRunner::run_forward(const ForwardBatch& batch) {
  const int pp = parallel_ != nullptr ? parallel_->topology.pp : 1;
  if (pp == 1) {
    forward_.forward(batch, cache_, logits_);
    return;
  }
  logits_.clear();
  for (const ForwardBatch& mb : split_micro_batches(batch, pp)) {
    forward_.forward(mb, cache_, micro_batch_logits_);
    logits_.insert(logits_.end(), micro_batch_logits_.begin(), micro_batch_logits_.end());
  }
}

// A sequence's tokens from its logit rows: one sampled token, or with drafts each draft
// verified in turn until one is rejected (its replacement ends the list) or all are accepted
// (the last row gives one more token).
std::vector<SampledToken> ModelRunner::sample_sequence(const ScheduledSequence& s, const float* rows,
                                                       SamplerWorkspace& workspace) {
  RequestState& state = requests_.at(s.id);
  const auto vocab = static_cast<size_t>(model_.config.vocab_size);
  std::vector<SampledToken> tokens;
  if (s.draft_token_ids.empty()) {
    tokens.push_back(sample_token({rows, vocab}, state.sampling, state.prompt_ids, state.output_ids,
                                  state.rng, workspace));
    return tokens;
  }
  std::vector<int32_t> history = state.output_ids;  // the penalties see accepted drafts
  for (size_t i = 0; i <= s.draft_token_ids.size(); ++i) {
    const std::span<const float> logits(rows + i * vocab, vocab);
    if (i == s.draft_token_ids.size()) {
      tokens.push_back(sample_token(logits, state.sampling, state.prompt_ids, history, state.rng, workspace));
      break;
    }
    const int32_t draft = s.draft_token_ids[i];
    tokens.push_back(verify_draft_token(logits, state.sampling, state.prompt_ids, history, draft,
                                        state.rng, workspace));
    if (tokens.back().id != draft) break;
    history.push_back(draft);
  }
  return tokens;
}

StepResult ModelRunner::sample(const StepPlan& plan) {
  std::vector<const ScheduledSequence*> seqs;
  std::vector<size_t> first_row;
  size_t num_rows = 0;
  for (const ScheduledSequence& s : plan.sequences) {
    if (!s.sample) continue;
    seqs.push_back(&s);
    first_row.push_back(num_rows);
    num_rows += static_cast<size_t>(s.num_logit_rows());
  }
  const auto vocab = static_cast<size_t>(model_.config.vocab_size);
  STRATA_CHECK(logits_.size() == num_rows * vocab);
  std::vector<std::vector<SampledToken>> sampled(seqs.size());
  // Requests sample independently (each owns its random stream), so they sample in
  // parallel, each thread in its own workspace.
  sampler_workspaces_.resize(static_cast<size_t>(omp_get_max_threads()));
#pragma omp parallel for schedule(dynamic) if (seqs.size() > 1)
  for (size_t i = 0; i < seqs.size(); ++i) {
    sampled[i] = sample_sequence(*seqs[i], logits_.data() + first_row[i] * vocab,
                                 sampler_workspaces_[omp_get_thread_num()]);
  }
  StepResult result;
  for (size_t i = 0; i < seqs.size(); ++i) result.sampled[seqs[i]->id] = std::move(sampled[i]);
  return result;
}

StepResult ModelRunner::execute(const StepPlan& plan) {
  requests_.apply(plan);
  ForwardBatch batch;
  build_batch(plan, batch);
  run_forward(batch);
  const bool any_sample = std::any_of(plan.sequences.begin(), plan.sequences.end(),
                                      [](const ScheduledSequence& s) { return s.sample; });
  if (!any_sample) return {};
  const int driver = 0;
  if (samples_here()) {
    StepResult result = sample(plan);
    if (parallel_ == nullptr || parallel_->topology.world_rank == driver) return result;
    send_step_result(*parallel_->world, result, driver);
    return {};
  }
  if (parallel_->topology.world_rank != driver) return {};
  return receive_step_result(*parallel_->world, parallel_->topology.last_stage_leader());
}

std::vector<ForwardBatch> split_micro_batches(const ForwardBatch& batch, int n) {
  const size_t num_seqs = batch.sequences.size();
  if (n <= 1 || num_seqs <= 1) return {batch};
  const size_t parts = std::min(static_cast<size_t>(n), num_seqs);
  const size_t total = batch.token_ids.size();
  std::vector<ForwardBatch> out(1);
  size_t token = 0, taken = 0;
  for (size_t s = 0; s < num_seqs; ++s) {
    const ForwardSequence& seq = batch.sequences[s];
    // Start the next micro-batch once this one holds its share of the tokens, leaving at
    // least one sequence for each remaining part.
    const size_t remaining_parts = parts - out.size();
    if (!out.back().sequences.empty() && remaining_parts > 0 &&
        (taken * parts >= total * out.size() || num_seqs - s == remaining_parts)) {
      out.emplace_back();
    }
    ForwardBatch& mb = out.back();
    mb.sequences.push_back(seq);
    mb.token_ids.insert(mb.token_ids.end(), batch.token_ids.begin() + static_cast<int64_t>(token),
                        batch.token_ids.begin() + static_cast<int64_t>(token + seq.num_new_tokens));
    token += static_cast<size_t>(seq.num_new_tokens);
    taken += static_cast<size_t>(seq.num_new_tokens);
  }
  return out;
}

}  // namespace strata
