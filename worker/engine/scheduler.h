// Scheduler: the iteration-level scheduler of one worker group, as plain logic with no
// model and no KV tensors. Each step, schedule() picks which sequences run which tokens
// (decode tokens of running sequences first, then prefill chunks under the token budget:
// the merge step); the engine runs the model and samples; update() applies the sampled
// tokens, finishes sequences and frees their blocks in that same step. The plan says what
// changed since the ranks last heard of each request (worker/engine/step_plan.h), so the scheduler
// also remembers, per sequence, how much of it the ranks hold.
//
// Capacity: when a running sequence needs a block and none is free, the newest running
// sequence is preempted (its blocks freed, its tokens recomputed later). New sequences are
// admitted only while `watermark` blocks stay free, so running ones rarely need to preempt.
//
// Prefix caching: a sequence being admitted (new, or preempted) starts from the longest
// chain of cached full blocks matching its tokens, always leaving at least its last token
// to compute (its logits are needed); once a step has computed a block's K/V the block is
// indexed for others. Cached blocks nobody holds count as reclaimable, so admission and
// growth see them as free. With batch invariance a cached prefix gives the very tokens
// that recomputing it would.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "common/config_fields.h"
#include "common/status.h"
#include "worker/kv/kv_block_manager.h"
#include "worker/engine/sequence.h"
#include "worker/engine/speculative/draft_proposer.h"
#include "worker/engine/speculative/speculation_governor.h"
#include "worker/engine/step_plan.h"

namespace strata {

// The settings in visit_fields are the worker's --max-num-seqs, --block-size, ... (YAML
// `worker:` keys); the rest are set by the code that builds the scheduler.
struct SchedulerConfig {
  int32_t max_num_batched_tokens = 512;
  int32_t max_num_seqs = 64;
  int32_t block_size = 16;
  double watermark = 0.01;               // fraction of blocks new admissions leave free
  // 0 until Engine::create fills in the model's context (as it does for anything beyond it).
  int64_t max_model_len = 0;
  bool static_batching = false;          // baseline: admit only when nothing runs
  bool enable_prefix_caching = true;
  // Speculative decoding, with a proposer (set_proposer): each decoding sequence runs up to
  // num_speculative_tokens drafts a step, while at most speculative_max_batch sequences
  // decode (past that a step is compute-bound and drafts cost more than they save).
  int32_t num_speculative_tokens = 4;
  int32_t speculative_max_batch = 4;
  bool speculative_adaptive = false;     // k from each sequence's running acceptance rate
  // Draft only at batch sizes where steps with drafts measured more decode tokens/s than
  // steps without (SpeculationGovernor); false: always, up to speculative_max_batch.
  bool speculative_governor = true;
  std::vector<int32_t> stop_token_ids;   // the model's EOS ids (ignore_eos skips them)
  uint64_t seed = 0;                     // seeds requests that bring none

  template <typename V>
  void visit_fields(V& v) {
    using config::Range;
    v("max_num_seqs", max_num_seqs, "sequences running at once", Range{1, 1 << 20});
    v("max_num_batched_tokens", max_num_batched_tokens, "tokens per engine step (decode + prefill chunks)", Range{1, 1 << 24});
    v("block_size", block_size, "KV-cache positions per block", Range{1, 1024});
    v("max_model_len", max_model_len, "positions one sequence may hold (0 = the model's context)", Range{0, 1 << 30});
    v("enable_prefix_caching", enable_prefix_caching, "reuse the KV blocks of prompt prefixes seen before (--no-prefix-caching recomputes every prompt)");
    v("num_speculative_tokens", num_speculative_tokens, "speculative decoding: draft tokens per sequence and step", Range{1, 64});
    v("speculative_max_batch", speculative_max_batch, "speculative decoding: speculate only while at most this many sequences decode", Range{0, 1 << 20});
    v("speculative_adaptive", speculative_adaptive, "speculative decoding: draft fewer tokens for sequences whose drafts are often rejected");
    v("speculative_governor", speculative_governor, "speculative decoding: draft only at batch sizes where steps with drafts measured faster than steps without (--no-speculative-governor: always)");
  }
  // The ranges above, the watermark, and max_model_len >= 1 (call it once that is filled in).
  Status validate() const;
};

struct SequenceOutput {
  RequestId id = 0;
  std::vector<SampledToken> new_tokens;  // one per step, or more with accepted drafts
  FinishReason finish_reason = FinishReason::kNone;
  int32_t num_prompt_tokens = 0;
  int32_t num_cached_tokens = 0;  // prompt tokens served from the prefix cache
  int32_t num_output_tokens = 0;
  int32_t logprobs = -1;  // the request's setting: >= 0, new_tokens carry logprobs; > 0, top ones
  bool finished() const { return finish_reason != FinishReason::kNone; }
};

struct SchedulerStats {
  int64_t num_waiting = 0;
  int64_t num_running = 0;
  int64_t num_preemptions = 0;  // since start
  KvBlockStats blocks;
  // Prefix caching, since start: tokens looked up at admission, tokens found cached, and
  // cached blocks evicted to make room.
  int64_t prefix_cache_queries = 0;
  int64_t prefix_cache_hits = 0;
  int64_t prefix_cache_evictions = 0;
  // Speculative decoding, since start: verification steps (a sequence's decode token with
  // drafts), draft tokens proposed and accepted.
  int64_t spec_verifications = 0;
  int64_t spec_draft_tokens = 0;
  int64_t spec_accepted_tokens = 0;
};

class Scheduler {
 public:
  Scheduler(SchedulerConfig config, int64_t num_blocks);

  // Queues a request; fails at once when it can never run (prompt + 1 token beyond the whole
  // cache or the model's context, a duplicate id, invalid sampling settings).
  Status add(Request request);
  // Removes a request wherever it is and frees its blocks now. False if unknown/finished.
  bool abort(RequestId id);

  // Speculative decoding drafts with `proposer` (null: off); it must outlive the scheduler.
  void set_proposer(DraftProposer* proposer) { proposer_ = proposer; }

  StepPlan schedule();
  // Applies sampled tokens; returns one output per sequence that produced a token or
  // finished (aborted sequences are reported by the next update).
  std::vector<SequenceOutput> update(const StepPlan& plan, const StepResult& result);
  // The step `plan` took `seconds` (drafting included) and gave `outputs`: what the
  // speculation governor learns from.
  void observe_step(const StepPlan& plan, const std::vector<SequenceOutput>& outputs, double seconds);

  Sequence* find(RequestId id);
  // Requests added and not yet finished or aborted, in id order.
  std::vector<RequestId> unfinished_ids() const;
  bool has_unfinished() const { return !waiting_.empty() || !running_.empty(); }
  SchedulerStats stats() const;
  const KvBlockManager& blocks() const { return blocks_; }
  const SchedulerConfig& config() const { return config_; }

 private:
  bool ensure_blocks(Sequence& seq, int32_t num_tokens, std::vector<Sequence*>& running);
  void preempt(Sequence& seq, StepPlan& plan);
  // Takes the head of the queue into the running batch with a chunk of at most `budget`
  // tokens, starting from its cached prefix; returns the chunk's tokens, or nullopt
  // (nothing changed) when its blocks would leave fewer than `reserve` reclaimable.
  std::optional<int32_t> admit(Sequence& seq, int32_t budget, int64_t reserve, StepPlan& plan);
  std::vector<int32_t> cached_prefix(Sequence& seq);
  void extend_block_hashes(Sequence& seq, int32_t num_full_blocks) const;
  void index_computed_blocks(Sequence& seq);
  void finish(Sequence& seq, FinishReason reason);
  // How many drafts `seq` may run this step with `budget` tokens left after its decode token.
  int32_t draft_allowance(const Sequence& seq, int32_t budget) const;
  // Asks the proposer for drafts of the planned decode tokens that have `room` (at most that
  // many each) and adds them to their chunks.
  void propose_drafts(StepPlan& plan, const std::map<RequestId, int32_t>& room);
  // Appends one sampled token to `seq` or finishes it (a stop id, its length); true once done.
  bool append_token(Sequence& seq, const SampledToken& token, SequenceOutput& out);
  void apply_verification(Sequence& seq, const ScheduledSequence& s, int32_t num_accepted);
  ScheduledSequence plan_chunk(const Sequence& seq, int32_t num_new) const;
  // Fills in what the ranks do not hold yet for each planned sequence (run once the plan's
  // sequences are final: preemption may withdraw a chunk planned earlier in the step).
  void describe_changes(StepPlan& plan);

  SchedulerConfig config_;
  KvBlockManager blocks_;
  int64_t watermark_blocks_;
  std::map<RequestId, std::unique_ptr<Sequence>> sequences_;
  std::deque<Sequence*> waiting_;   // FCFS; preempted sequences go back to the front
  std::vector<Sequence*> running_;  // in admission order: the back is the newest
  std::vector<RequestId> aborted_;  // reported by the next update()
  std::vector<RequestId> gone_since_plan_;  // announced, then finished or aborted
  int64_t num_preemptions_ = 0;
  int64_t prefix_cache_queries_ = 0;
  int64_t prefix_cache_hits_ = 0;
  int64_t spec_verifications_ = 0, spec_draft_tokens_ = 0, spec_accepted_tokens_ = 0;
  DraftProposer* proposer_ = nullptr;
  SpeculationGovernor governor_;
  uint64_t next_seed_;
};

}  // namespace strata
