#include "worker/engine/scheduler.h"

#include <algorithm>
#include <cmath>

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
  if (proposer_ != nullptr) proposer_->forget(id);
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
  if (proposer_ != nullptr) proposer_->forget(seq.id());
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

int32_t Scheduler::draft_allowance(const Sequence& seq, int32_t budget) const {
  const SamplingParams& p = seq.request.sampling;
  if (!p.speculative) return 0;
  int32_t k = config_.num_speculative_tokens;
  if (config_.speculative_adaptive) {
    k = std::clamp(static_cast<int32_t>(std::ceil(k * seq.draft_acceptance)), 1, k);
  }
  // Accepted drafts are output tokens, and the step ends with one more token of the target's.
  const auto num_output = static_cast<int32_t>(seq.output_ids.size());
  int32_t outputs_left = p.max_tokens - num_output - 1;
  if (p.stop_after_tokens > 0) outputs_left = std::min(outputs_left, p.stop_after_tokens - num_output - 1);
  // Draft i sits at position num_tokens - 1 + i, which the context must hold.
  const int64_t max_len = std::min<int64_t>(config_.max_model_len, blocks_.num_total() * config_.block_size);
  const auto positions_left = static_cast<int32_t>(std::min<int64_t>(max_len - seq.num_tokens(), k));
  return std::max(0, std::min({k, budget, outputs_left, positions_left}));
}

void Scheduler::propose_drafts(StepPlan& plan, const std::map<RequestId, int32_t>& room) {
  std::vector<DraftRequest> requests;
  std::vector<ScheduledSequence*> planned;
  for (ScheduledSequence& s : plan.sequences) {
    auto it = room.find(s.id);
    if (it == room.end()) continue;  // not speculating, or withdrawn by a preemption
    requests.push_back({.seq = find(s.id), .max_drafts = it->second});
    planned.push_back(&s);
  }
  if (requests.empty()) return;
  proposer_->propose(requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    std::vector<int32_t>& drafts = requests[i].drafts;
    if (static_cast<int32_t>(drafts.size()) > requests[i].max_drafts) drafts.resize(static_cast<size_t>(requests[i].max_drafts));
    Sequence& seq = *find(planned[i]->id);
    // Blocks taken for drafts the proposer did not make go back at once.
    blocks_.truncate(seq.block_table, seq.num_tokens() + static_cast<int64_t>(drafts.size()));
    planned[i]->num_new_tokens += static_cast<int32_t>(drafts.size());
    planned[i]->draft_token_ids = std::move(drafts);
  }
}

StepPlan Scheduler::schedule() {
  StepPlan plan;
  int32_t budget = config_.max_num_batched_tokens;

  // Running sequences: decode tokens first, then the rest of partially prefilled prompts.
  std::vector<Sequence*> order;
  for (Sequence* s : running_) if (s->num_uncomputed_tokens() == 1) order.push_back(s);
  const auto num_decoding = static_cast<int32_t>(order.size());
  for (Sequence* s : running_) if (s->num_uncomputed_tokens() > 1) order.push_back(s);
  const bool speculate = proposer_ != nullptr && num_decoding > 0 &&
                         num_decoding <= config_.speculative_max_batch &&
                         (!config_.speculative_governor || governor_.should_speculate(num_decoding));
  std::map<RequestId, int32_t> room;  // drafts each speculating sequence has blocks and budget for
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
    if (!speculate || seq->num_uncomputed_tokens() != 1) continue;
    // Drafts take blocks only where no one would be preempted for them.
    int32_t k = draft_allowance(*seq, budget);
    while (k > 0 && !blocks_.grow(seq->block_table, seq->num_tokens() + k, watermark_blocks_)) --k;
    if (k > 0) room[seq->id()] = k;
    budget -= k;
  }
  if (!room.empty()) propose_drafts(plan, room);
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
  // A preempted sequence whose blocks are all still cached resumes with a decode token. A
  // decode token's drafts count as decode work.
  const auto is_decode = [&](const ScheduledSequence& s) {
    return !s.draft_token_ids.empty() ||
           (s.num_new_tokens == 1 && s.num_computed_tokens >= find(s.id)->num_prompt_tokens());
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
  if (proposer_ != nullptr) proposer_->forget(seq.id());
  if (seq.announced) gone_since_plan_.push_back(seq.id());
  running_.erase(std::find(running_.begin(), running_.end(), &seq));
}

bool Scheduler::append_token(Sequence& seq, const SampledToken& token, SequenceOutput& out) {
  const SamplingParams& p = seq.request.sampling;
  const auto& eos = config_.stop_token_ids;
  const bool is_stop = (!p.ignore_eos && std::find(eos.begin(), eos.end(), token.id) != eos.end()) ||
                       std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), token.id) != p.stop_token_ids.end();
  if (is_stop) {
    finish(seq, FinishReason::kStop);  // the stop id itself is not output
    return true;
  }
  seq.output_ids.push_back(token.id);
  out.new_tokens.push_back(token);
  // A sampled token needs no cache slot; feeding it next step would need position
  // num_tokens - 1, so the context is full once that reaches max_model_len — or the
  // whole cache, which one sequence can never outgrow (it would preempt itself forever).
  const int64_t max_len = std::min<int64_t>(config_.max_model_len, blocks_.num_total() * config_.block_size);
  const auto num_output = static_cast<int32_t>(seq.output_ids.size());
  if (num_output >= p.max_tokens || seq.num_tokens() - 1 >= max_len) {
    finish(seq, FinishReason::kLength);
  } else if (p.stop_after_tokens > 0 && num_output >= p.stop_after_tokens) {
    finish(seq, FinishReason::kStop);
  }
  return seq.status == SequenceStatus::kFinished;
}

// The drafts' verdict: the accepted ones are computed positions now; the rejected ones'
// blocks go back (the ranks' tables shrink with the scheduler's).
void Scheduler::apply_verification(Sequence& seq, const ScheduledSequence& s, int32_t num_accepted) {
  const auto num_drafts = static_cast<int32_t>(s.draft_token_ids.size());
  ++spec_verifications_;
  spec_draft_tokens_ += num_drafts;
  spec_accepted_tokens_ += num_accepted;
  seq.draft_acceptance = 0.7 * seq.draft_acceptance + 0.3 * num_accepted / num_drafts;
  if (seq.status != SequenceStatus::kRunning) return;  // finished: its blocks are released
  blocks_.truncate(seq.block_table, seq.num_computed_tokens);
  seq.num_blocks_sent = std::min(seq.num_blocks_sent, static_cast<int32_t>(seq.block_table.size()));
  seq.num_blocks_indexed = std::min(seq.num_blocks_indexed, static_cast<int32_t>(seq.block_table.size()));
}

std::vector<SequenceOutput> Scheduler::update(const StepPlan& plan, const StepResult& result) {
  std::vector<SequenceOutput> outputs;
  for (RequestId id : aborted_) outputs.push_back({.id = id, .finish_reason = FinishReason::kAbort});
  aborted_.clear();
  std::vector<RequestId> done;
  for (const ScheduledSequence& s : plan.sequences) {
    Sequence* seq = find(s.id);
    if (seq == nullptr || seq->status != SequenceStatus::kRunning) continue;
    if (!s.sample) {
      seq->num_computed_tokens += s.num_new_tokens;
      index_computed_blocks(*seq);
      continue;
    }
    auto sampled = result.sampled.find(s.id);
    STRATA_CHECK(sampled != result.sampled.end());
    const std::vector<SampledToken>& tokens = sampled->second;
    const auto num_drafts = static_cast<int32_t>(s.draft_token_ids.size());
    STRATA_CHECK(!tokens.empty() && static_cast<int32_t>(tokens.size()) <= num_drafts + 1);
    // Every token but the last is an accepted draft, whose K/V this step computed.
    const auto num_accepted = static_cast<int32_t>(tokens.size()) - 1;
    for (int32_t i = 0; i < num_accepted; ++i) STRATA_CHECK(tokens[static_cast<size_t>(i)].id == s.draft_token_ids[static_cast<size_t>(i)]);
    seq->num_computed_tokens += s.num_new_tokens - num_drafts;
    index_computed_blocks(*seq);  // before a finish releases the blocks
    SequenceOutput out{.id = s.id, .num_prompt_tokens = seq->num_prompt_tokens(),
                       .num_cached_tokens = std::max(seq->num_cached_tokens, 0),
                       .logprobs = seq->request.sampling.logprobs};
    for (const SampledToken& token : tokens) {
      if (append_token(*seq, token, out)) break;
    }
    if (num_drafts > 0) {
      seq->num_computed_tokens += num_accepted;
      apply_verification(*seq, s, num_accepted);
      // Only now are the accepted drafts tokens of the sequence, hashed with their blocks.
      if (seq->status == SequenceStatus::kRunning) index_computed_blocks(*seq);
    }
    out.finish_reason = seq->finish_reason;
    out.num_output_tokens = static_cast<int32_t>(seq->output_ids.size());
    if (out.finished()) done.push_back(s.id);
    outputs.push_back(std::move(out));
  }
  for (RequestId id : done) sequences_.erase(id);
  return outputs;
}

void Scheduler::observe_step(const StepPlan& plan, const std::vector<SequenceOutput>& outputs, double seconds) {
  if (proposer_ == nullptr || plan.empty() || plan.num_prefill_tokens > 0) return;
  int64_t tokens = 0;
  for (const SequenceOutput& o : outputs) tokens += static_cast<int64_t>(o.new_tokens.size());
  const bool speculated = std::any_of(plan.sequences.begin(), plan.sequences.end(),
                                      [](const ScheduledSequence& s) { return !s.draft_token_ids.empty(); });
  governor_.observe(static_cast<int32_t>(plan.sequences.size()), speculated, tokens, seconds);
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
  s.spec_verifications = spec_verifications_;
  s.spec_draft_tokens = spec_draft_tokens_;
  s.spec_accepted_tokens = spec_accepted_tokens_;
  return s;
}

}  // namespace strata
