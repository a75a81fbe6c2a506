#include "worker/engine/scheduler.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "common/check.h"

namespace strata {

std::string_view finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone: return "";
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kAbort: return "abort";
  }
  return "";
}

Status SchedulerConfig::validate() const {
  STRATA_RETURN_IF_ERROR(config::check_ranges(*this));
  if (!(watermark >= 0.0 && watermark < 1.0)) {
    return invalid_argument("`watermark` must be in [0, 1). Given: {}", watermark);
  }
  if (max_model_len < 1) {
    return invalid_argument("`max_model_len` must be >= 1 once the model's context is filled in. "
                            "Given: {}", max_model_len);
  }
  return ok_status();
}

Scheduler::Scheduler(SchedulerConfig config, int64_t num_blocks)
    : config_(std::move(config)),
      blocks_(num_blocks, config_.block_size, config_.enable_prefix_caching),
      watermark_blocks_(static_cast<int64_t>(config_.watermark * static_cast<double>(num_blocks))),
      next_seed_(config_.seed) {}

Status Scheduler::add(Request request) {
  STRATA_RETURN_IF_ERROR(request.sampling.validate());
  const int64_t prompt_len = static_cast<int64_t>(request.prompt_ids.size());
  if (prompt_len == 0) return invalid_argument("request {}: the prompt has no tokens", request.id);
  if (prompt_len > config_.max_model_len) {
    return out_of_range("request {}: the prompt has {} tokens but the context holds {}; shorten it",
                        request.id, prompt_len, config_.max_model_len);
  }
  const int64_t needed = KvBlockManager::blocks_for_tokens(prompt_len + 1, config_.block_size);
  if (needed > blocks_.num_total()) {
    return out_of_range(
        "request {}: the prompt ({} tokens) plus one output token needs {} KV blocks but the "
        "whole cache has {}; shorten the prompt or give the worker a larger KV cache",
        request.id, prompt_len, needed, blocks_.num_total());
  }
  if (sequences_.count(request.id)) return invalid_argument("request id {} is already in use", request.id);
  const RequestId id = request.id;
  // The effective seed is recorded in the request, so every rank that samples for it (the
  // last pipeline stage of a worker group) draws the same stream.
  if (!request.sampling.seed) request.sampling.seed = next_seed_++;
  auto seq = std::make_unique<Sequence>(std::move(request));
  waiting_.push_back(seq.get());
  sequences_.emplace(id, std::move(seq));
  return ok_status();
}

bool Scheduler::abort(RequestId id) {
  auto it = sequences_.find(id);
  if (it == sequences_.end()) return false;
  Sequence& seq = *it->second;
  if (seq.status == SequenceStatus::kWaiting) {
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), &seq));
  } else if (seq.status == SequenceStatus::kRunning) {
    running_.erase(std::find(running_.begin(), running_.end(), &seq));
  }
  blocks_.release(seq.block_table);
  aborted_.push_back(id);
  if (seq.announced) gone_since_plan_.push_back(id);
  sequences_.erase(it);
  return true;
}

std::vector<RequestId> Scheduler::unfinished_ids() const {
  std::vector<RequestId> ids;
  for (const auto& [id, seq] : sequences_) {
    if (seq->status != SequenceStatus::kFinished) ids.push_back(id);
  }
  return ids;
}

Sequence* Scheduler::find(RequestId id) {
  auto it = sequences_.find(id);
  return it == sequences_.end() ? nullptr : it->second.get();
}

void Scheduler::preempt(Sequence& seq, StepPlan& plan) {
  blocks_.release(seq.block_table);
  seq.num_blocks_sent = 0;  // the ranks' table is replaced when it runs again
  seq.num_blocks_indexed = 0;
  seq.num_computed_tokens = 0;
  seq.status = SequenceStatus::kWaiting;
  ++seq.num_preemptions;
  ++num_preemptions_;
  running_.erase(std::find(running_.begin(), running_.end(), &seq));
  waiting_.push_front(&seq);
  plan.preempted.push_back(seq.id());
  // A chunk already planned for the victim this step is withdrawn.
  std::erase_if(plan.sequences, [&](const ScheduledSequence& s) { return s.id == seq.id(); });
  spdlog::debug("preempted request {} ({} tokens, preemption #{} overall)", seq.id(),
                seq.num_tokens(), num_preemptions_);
}

void Scheduler::extend_block_hashes(Sequence& seq, int32_t num_full_blocks) const {
  const int32_t bs = config_.block_size;
  std::vector<int32_t> block(static_cast<size_t>(bs));
  for (auto b = static_cast<int32_t>(seq.block_hashes.size()); b < num_full_blocks; ++b) {
    for (int32_t i = 0; i < bs; ++i) block[static_cast<size_t>(i)] = seq.token_at(b * bs + i);
    seq.block_hashes.push_back(
        chain_block_hash(b == 0 ? kFirstBlockParent : seq.block_hashes.back(), block));
  }
}

std::vector<int32_t> Scheduler::cached_prefix(Sequence& seq) {
  if (!blocks_.prefix_caching()) return {};
  // The last token is always computed: its logits give the next one.
  const int32_t usable = (seq.num_tokens() - 1) / config_.block_size;
  extend_block_hashes(seq, usable);
  return blocks_.cached_prefix(std::span(seq.block_hashes).first(static_cast<size_t>(usable)));
}

std::optional<int32_t> Scheduler::admit(Sequence& seq, int32_t budget, int64_t reserve, StepPlan& plan) {
  STRATA_CHECK(seq.block_table.empty() && seq.num_computed_tokens == 0);
  const std::vector<int32_t> prefix = cached_prefix(seq);
  const auto cached = static_cast<int32_t>(prefix.size()) * config_.block_size;
  const int32_t n = std::min(seq.num_tokens() - cached, budget);
  if (!blocks_.grow_from_prefix(seq.block_table, prefix, cached + std::max(n, 1), reserve)) return std::nullopt;
  seq.num_computed_tokens = cached;
  seq.num_blocks_indexed = static_cast<int32_t>(prefix.size());
  if (seq.num_cached_tokens < 0) seq.num_cached_tokens = std::min(cached, seq.num_prompt_tokens());
  if (blocks_.prefix_caching()) {
    prefix_cache_queries_ += seq.num_tokens();
    prefix_cache_hits_ += cached;
  }
  waiting_.pop_front();
  seq.status = SequenceStatus::kRunning;
  running_.push_back(&seq);
  if (n > 0) plan.sequences.push_back(plan_chunk(seq, n));
  return n;
}

void Scheduler::index_computed_blocks(Sequence& seq) {
  if (!blocks_.prefix_caching()) return;
  const int32_t full = seq.num_computed_tokens / config_.block_size;
  extend_block_hashes(seq, full);
  for (int32_t b = seq.num_blocks_indexed; b < full; ++b) {
    blocks_.cache_full_block(seq.block_table[static_cast<size_t>(b)],
                             seq.block_hashes[static_cast<size_t>(b)]);
  }
  seq.num_blocks_indexed = std::max(seq.num_blocks_indexed, full);
}

ScheduledSequence Scheduler::plan_chunk(const Sequence& seq, int32_t num_new) const {
  return {.id = seq.id(), .num_computed_tokens = seq.num_computed_tokens, .num_new_tokens = num_new,
          .sample = seq.num_computed_tokens + num_new == seq.num_tokens()};
}

void Scheduler::describe_changes(StepPlan& plan) {
  if (plan.empty()) return;  // an empty plan is not sent: the finished ids wait for the next
  plan.finished_ids = std::exchange(gone_since_plan_, {});
  for (ScheduledSequence& s : plan.sequences) {
    Sequence& seq = *find(s.id);
    if (!seq.announced) {
      plan.new_requests.push_back({.id = seq.id(), .prompt_ids = seq.request.prompt_ids,
                                   .sampling = seq.request.sampling});
      seq.announced = true;
      seq.num_tokens_sent = seq.num_prompt_tokens();
    }
    s.new_token_ids.assign(seq.output_ids.begin() + (seq.num_tokens_sent - seq.num_prompt_tokens()),
                           seq.output_ids.end());
    seq.num_tokens_sent = seq.num_tokens();
    s.num_kept_blocks = seq.num_blocks_sent;
    s.new_block_ids.assign(seq.block_table.begin() + seq.num_blocks_sent, seq.block_table.end());
    seq.num_blocks_sent = static_cast<int32_t>(seq.block_table.size());
  }
}

StepPlan Scheduler::schedule() {
  StepPlan plan;
  int32_t budget = config_.max_num_batched_tokens;

  // Running sequences: decode tokens first, then the rest of partially prefilled prompts.
  std::vector<Sequence*> order;
  for (Sequence* s : running_) if (s->num_uncomputed_tokens() == 1) order.push_back(s);
  for (Sequence* s : running_) if (s->num_uncomputed_tokens() > 1) order.push_back(s);
  for (Sequence* seq : order) {
    if (seq->status != SequenceStatus::kRunning) continue;  // preempted earlier in this loop
    if (budget == 0) break;
    const int32_t n = std::min(seq->num_uncomputed_tokens(), budget);
    bool preempted_self = false;
    while (!blocks_.grow(seq->block_table, seq->num_computed_tokens + n)) {
      Sequence* victim = running_.back();  // the newest running sequence
      preempt(*victim, plan);
      if (victim == seq) {
        preempted_self = true;
        break;
      }
    }
    if (preempted_self) continue;
    plan.sequences.push_back(plan_chunk(*seq, n));
    budget -= n;
  }
  // Refund what chunks withdrawn by preemption had taken.
  budget = config_.max_num_batched_tokens;
  for (const ScheduledSequence& s : plan.sequences) budget -= s.num_new_tokens;

  // Waiting sequences, FCFS, while the budget, the batch cap and the watermark allow. Static
  // batching admits only into an empty batch (the baseline continuous batching is measured
  // against).
  const bool may_admit = !config_.static_batching || running_.empty();
  while (may_admit && !waiting_.empty() &&
         static_cast<int32_t>(running_.size()) < config_.max_num_seqs &&
         (budget > 0 || config_.static_batching)) {
    // The watermark keeps room for running sequences to grow; with none running it would
    // only stop a request that fits the whole cache from ever starting.
    const int64_t reserve = running_.empty() ? 0 : watermark_blocks_;
    const std::optional<int32_t> planned = admit(*waiting_.front(), budget, reserve, plan);
    if (!planned) break;
    budget -= *planned;
  }
  // A preempted sequence whose blocks are all still cached resumes with a decode token.
  const auto is_decode = [&](const ScheduledSequence& s) {
    return s.num_new_tokens == 1 && s.num_computed_tokens >= find(s.id)->num_prompt_tokens();
  };
  std::stable_partition(plan.sequences.begin(), plan.sequences.end(), is_decode);
  for (const ScheduledSequence& s : plan.sequences) {
    (is_decode(s) ? plan.num_decode_tokens : plan.num_prefill_tokens) += s.num_new_tokens;
  }
  describe_changes(plan);
  return plan;
}

void Scheduler::finish(Sequence& seq, FinishReason reason) {
  seq.finish_reason = reason;
  seq.status = SequenceStatus::kFinished;
  blocks_.release(seq.block_table);
  if (seq.announced) gone_since_plan_.push_back(seq.id());
  running_.erase(std::find(running_.begin(), running_.end(), &seq));
}

std::vector<SequenceOutput> Scheduler::update(const StepPlan& plan, const StepResult& result) {
  std::vector<SequenceOutput> outputs;
  for (RequestId id : aborted_) outputs.push_back({.id = id, .finish_reason = FinishReason::kAbort});
  aborted_.clear();
  std::vector<RequestId> done;
  for (const ScheduledSequence& s : plan.sequences) {
    Sequence* seq = find(s.id);
    if (seq == nullptr || seq->status != SequenceStatus::kRunning) continue;
    seq->num_computed_tokens += s.num_new_tokens;
    index_computed_blocks(*seq);
    if (!s.sample) continue;
    auto sampled = result.sampled.find(s.id);
    STRATA_CHECK(sampled != result.sampled.end());
    const int32_t token = sampled->second.id;
    const SamplingParams& p = seq->request.sampling;
    SequenceOutput out{.id = s.id, .num_prompt_tokens = seq->num_prompt_tokens(),
                       .num_cached_tokens = std::max(seq->num_cached_tokens, 0), .logprobs = p.logprobs};
    const auto& eos = config_.stop_token_ids;
    const bool is_stop = (!p.ignore_eos && std::find(eos.begin(), eos.end(), token) != eos.end()) ||
                         std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), token) != p.stop_token_ids.end();
    if (is_stop) {
      finish(*seq, FinishReason::kStop);  // the stop id itself is not output
    } else {
      seq->output_ids.push_back(token);
      out.new_tokens.push_back(sampled->second);
      // A sampled token needs no cache slot; feeding it next step would need position
      // num_tokens - 1, so the context is full once that reaches max_model_len — or the
      // whole cache, which one sequence can never outgrow (it would preempt itself forever).
      const int64_t max_len = std::min<int64_t>(config_.max_model_len,
                                                blocks_.num_total() * config_.block_size);
      const auto num_output = static_cast<int32_t>(seq->output_ids.size());
      if (num_output >= p.max_tokens || seq->num_tokens() - 1 >= max_len) {
        finish(*seq, FinishReason::kLength);
      } else if (p.stop_after_tokens > 0 && num_output >= p.stop_after_tokens) {
        finish(*seq, FinishReason::kStop);
      }
    }
    out.finish_reason = seq->finish_reason;
    out.num_output_tokens = static_cast<int32_t>(seq->output_ids.size());
    if (out.finished()) done.push_back(s.id);
    outputs.push_back(std::move(out));
  }
  for (RequestId id : done) sequences_.erase(id);
  return outputs;
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats s;
  s.num_waiting = static_cast<int64_t>(waiting_.size());
  s.num_running = static_cast<int64_t>(running_.size());
  s.num_preemptions = num_preemptions_;
  s.blocks.total = blocks_.num_total();
  s.blocks.free = blocks_.num_free();
  s.blocks.cached = blocks_.num_cached();
  s.blocks.used_by_running = s.blocks.total - s.blocks.free - s.blocks.cached;
  s.prefix_cache_queries = prefix_cache_queries_;
  s.prefix_cache_hits = prefix_cache_hits_;
  s.prefix_cache_evictions = blocks_.num_evictions();
  return s;
}

}  // namespace strata
