// The iteration scheduler as plain logic: no model, no KV tensors. A fake runner "samples"
// a token that depends only on the request and its position, so every property of the
// schedule (budgets, decode-first order, preemption, recompute, aborts, block accounting)
// is checked without weights.
#include <algorithm>
#include <map>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "worker/engine/request_states.h"
#include "worker/engine/scheduler.h"

namespace strata {
namespace {

// The token a fake model emits for request `id` at output index `i` (never a stop id).
int32_t fake_token(RequestId id, size_t i) { return static_cast<int32_t>(10 + (id * 7 + i * 13) % 90); }

Request make_request(RequestId id, int32_t prompt_len, int32_t max_tokens) {
  Request r{.id = id};
  for (int32_t i = 0; i < prompt_len; ++i) r.prompt_ids.push_back(static_cast<int32_t>(3 + (id + i) % 50));
  r.sampling.temperature = 0.0f;
  r.sampling.max_tokens = max_tokens;
  return r;
}

// A request whose prompt starts with shared prefix `family` (the same tokens for every
// request of that family) and ends with tokens of its own.
Request make_shared_prefix_request(RequestId id, int family, int32_t prompt_len, int32_t max_tokens,
                                   int32_t shared_len = 1 << 20) {
  Request r = make_request(id, prompt_len, max_tokens);
  for (int32_t i = 0; i < std::min(prompt_len, shared_len); ++i) {
    r.prompt_ids[static_cast<size_t>(i)] = static_cast<int32_t>(60 + (family * 11 + i * 3) % 37);
  }
  return r;
}

// The plan as the other ranks of a worker group receive it: through msgpack.
StepPlan over_the_wire(const StepPlan& plan) {
  msgpack::sbuffer buffer;
  msgpack::pack(buffer, plan);
  return msgpack::unpack(buffer.data(), buffer.size()).get().as<StepPlan>();
}

// Drives the scheduler like the engine does, with the fake model, checking per-step
// invariants — among them that a RequestStates fed only the plans (changes only, each
// prompt once) holds exactly the scheduler's tokens and block tables; returns each
// request's outputs.
class FakeEngine {
 public:
  explicit FakeEngine(SchedulerConfig config, int64_t num_blocks) : sched_(config, num_blocks), config_(config) {}

  Scheduler& scheduler() { return sched_; }

  StepPlan step() {
    StepPlan plan = sched_.schedule();
    check_plan(plan);
    if (!plan.empty()) {
      ranks_view_.apply(over_the_wire(plan));
      check_ranks_view(plan);
      for (const NewRequest& r : plan.new_requests) ++times_announced_[r.id];
    }
    StepResult result;
    for (const ScheduledSequence& s : plan.sequences) {
      if (!s.sample) continue;
      // The "target" outputs fake_token(id, i) at output i and verifies drafts against it.
      const size_t index = outputs_[s.id].size();
      std::vector<SampledToken>& tokens = result.sampled[s.id];
      for (size_t i = 0;; ++i) {
        const int32_t token = fake_token(s.id, index + i);
        tokens.push_back({.id = token});
        if (i == s.draft_token_ids.size() || s.draft_token_ids[i] != token) break;
      }
    }
    for (const SequenceOutput& out : sched_.update(plan, result)) {
      for (const SampledToken& t : out.new_tokens) outputs_[out.id].push_back(t.id);
      if (out.finished()) finished_[out.id] = out.finish_reason;
      cached_tokens_[out.id] = out.num_cached_tokens;
    }
    check_blocks();
    ++steps_;
    return plan;
  }

  void run_to_completion(int max_steps = 100000) {
    while (sched_.has_unfinished() && steps_ < max_steps) step();
    ASSERT_FALSE(sched_.has_unfinished()) << "did not finish in " << max_steps << " steps";
  }

  std::map<RequestId, std::vector<int32_t>> outputs_;
  std::map<RequestId, FinishReason> finished_;
  std::map<RequestId, int> times_announced_;
  std::map<RequestId, int32_t> cached_tokens_;
  int steps_ = 0;

 private:
  void check_ranks_view(const StepPlan& plan) {
    for (const ScheduledSequence& s : plan.sequences) {
      const Sequence* seq = sched_.find(s.id);
      const RequestState& held = ranks_view_.at(s.id);
      EXPECT_EQ(held.block_table, seq->block_table) << "request " << s.id;
      EXPECT_EQ(held.prompt_ids, seq->request.prompt_ids);
      EXPECT_EQ(held.output_ids, seq->output_ids) << "request " << s.id;
      EXPECT_EQ(held.sampling.seed, seq->request.sampling.seed);
      std::vector<int32_t> tokens;
      ranks_view_.append_step_tokens(s, tokens);
      for (int32_t j = 0; j < s.num_new_tokens; ++j) {
        const int32_t pos = s.num_computed_tokens + j;
        EXPECT_EQ(tokens[static_cast<size_t>(j)],
                  pos < seq->num_tokens() ? seq->token_at(pos)
                                          : s.draft_token_ids[static_cast<size_t>(pos - seq->num_tokens())]);
      }
    }
    for (RequestId id : plan.finished_ids) EXPECT_FALSE(ranks_view_.contains(id));
  }
  void check_plan(const StepPlan& plan) {
    int32_t tokens = 0;
    bool seen_prefill = false;
    std::set<RequestId> ids;
    for (const ScheduledSequence& s : plan.sequences) {
      tokens += s.num_new_tokens;
      EXPECT_TRUE(ids.insert(s.id).second) << "request scheduled twice in one step";
      const Sequence* seq = sched_.find(s.id);
      ASSERT_NE(seq, nullptr);
      // Every position this chunk writes has a block.
      EXPECT_GE(static_cast<int64_t>(seq->block_table.size()) * config_.block_size,
                s.num_computed_tokens + static_cast<int64_t>(s.num_new_tokens));
      const bool decode = !s.draft_token_ids.empty() ||
                          (s.num_new_tokens == 1 && s.num_computed_tokens >= seq->num_prompt_tokens());
      if (!decode) seen_prefill = true;
      if (!s.draft_token_ids.empty()) {  // drafts follow the decode token, its last one
        EXPECT_TRUE(s.sample);
        EXPECT_EQ(s.num_computed_tokens + 1, seq->num_tokens());
        EXPECT_EQ(s.num_new_tokens, 1 + static_cast<int32_t>(s.draft_token_ids.size()));
      }
      // A shared (cached prefix) block is never written.
      const int32_t bs = config_.block_size;
      for (int32_t b = s.num_computed_tokens / bs; b <= (s.num_computed_tokens + s.num_new_tokens - 1) / bs; ++b) {
        EXPECT_EQ(sched_.blocks().ref_count(seq->block_table[static_cast<size_t>(b)]), 1)
            << "request " << s.id << " writes into shared block " << b;
      }
      EXPECT_FALSE(decode && seen_prefill) << "a decode token was scheduled after a prefill chunk";
    }
    EXPECT_LE(tokens, config_.max_num_batched_tokens);
    EXPECT_EQ(tokens, plan.num_decode_tokens + plan.num_prefill_tokens);
    EXPECT_LE(static_cast<int64_t>(plan.sequences.size()), config_.max_num_seqs);
    EXPECT_LE(sched_.stats().num_running, config_.max_num_seqs);
  }
  // Every block is free, cached (held by nobody, kept for its prefix) or held: its
  // reference count is the number of live tables holding it, and free + cached + held ==
  // total.
  void check_blocks() {
    std::map<int32_t, int32_t> holders;
    for (RequestId id : sched_.unfinished_ids()) {
      for (int32_t b : sched_.find(id)->block_table) ++holders[b];
    }
    for (auto [b, n] : holders) EXPECT_EQ(sched_.blocks().ref_count(b), n) << "block " << b;
    const SchedulerStats st = sched_.stats();
    const auto held = static_cast<int64_t>(holders.size());
    EXPECT_EQ(st.blocks.free + st.blocks.cached + held, st.blocks.total);
    EXPECT_EQ(st.blocks.used_by_running, held);
  }

  Scheduler sched_;
  SchedulerConfig config_;
  RequestStates ranks_view_;
};

// Guesses the fake model's next tokens, wrongly at the second draft for a third of the
// steps, and one draft short of what it may for requests with ids divisible by 4.
class FakeProposer final : public DraftProposer {
 public:
  void propose(std::span<DraftRequest> requests) override {
    for (DraftRequest& r : requests) {
      const RequestId id = r.seq->id();
      const size_t out = r.seq->output_ids.size();
      const int32_t n = id % 4 == 0 ? r.max_drafts - 1 : r.max_drafts;
      for (int32_t i = 0; i < n; ++i) r.drafts.push_back(fake_token(id, out + static_cast<size_t>(i)));
      if ((id + out) % 3 == 0 && r.drafts.size() > 1) r.drafts[1] = 5;  // never a fake token
      ++calls;
    }
  }
  void forget(RequestId) override { ++forgotten; }
  int calls = 0, forgotten = 0;
};

// After every request ended no block is referenced: each is free or cached.
void expect_nothing_held(const Scheduler& s, int64_t num_blocks) {
  const SchedulerStats st = s.stats();
  EXPECT_EQ(st.blocks.used_by_running, 0);
  EXPECT_EQ(st.blocks.free + st.blocks.cached, num_blocks);
  for (int32_t b = 0; b < num_blocks; ++b) EXPECT_EQ(s.blocks().ref_count(b), 0) << "block " << b;
}

SchedulerConfig config(int32_t budget, int32_t max_seqs, int32_t block_size = 4) {
  return {.max_num_batched_tokens = budget, .max_num_seqs = max_seqs, .block_size = block_size,
          .watermark = 0.0, .max_model_len = 4096, .stop_token_ids = {2}};
}

TEST(Scheduler, RunsMixedLengthsToCompletionWithExactOutputs) {
  FakeEngine e(config(32, 8), 200);
  std::mt19937 rng(1);
  std::map<RequestId, int32_t> max_tokens;
  for (RequestId id = 1; id <= 40; ++id) {
    max_tokens[id] = 1 + static_cast<int32_t>(rng() % 30);
    ASSERT_TRUE(e.scheduler().add(make_request(id, 1 + static_cast<int32_t>(rng() % 70), max_tokens[id])).ok());
  }
  e.run_to_completion();
  EXPECT_GT(e.steps_, 100);
  for (auto& [id, n] : max_tokens) {
    ASSERT_EQ(e.outputs_[id].size(), static_cast<size_t>(n)) << id;
    for (size_t i = 0; i < e.outputs_[id].size(); ++i) EXPECT_EQ(e.outputs_[id][i], fake_token(id, i));
    EXPECT_EQ(e.finished_[id], FinishReason::kLength);
  }
  expect_nothing_held(e.scheduler(), 200);
}

TEST(Scheduler, DecodesComeFirstAndPrefillFillsTheRestOfTheBudget) {
  FakeEngine e(config(10, 8), 100);
  ASSERT_TRUE(e.scheduler().add(make_request(1, 3, 20)).ok());
  ASSERT_TRUE(e.scheduler().add(make_request(2, 3, 20)).ok());
  e.step();  // both prompts in one step (6 tokens)
  ASSERT_TRUE(e.scheduler().add(make_request(3, 25, 5)).ok());
  const StepPlan plan = e.step();
  ASSERT_EQ(plan.sequences.size(), 3u);
  EXPECT_EQ(plan.num_decode_tokens, 2);
  EXPECT_EQ(plan.num_prefill_tokens, 8);  // the budget's remainder: a chunk of request 3
  EXPECT_EQ(plan.sequences[2].id, 3u);
  EXPECT_FALSE(plan.sequences[2].sample);
  const StepPlan next = e.step();
  EXPECT_EQ(next.num_decode_tokens, 2);
  EXPECT_EQ(next.sequences[2].num_computed_tokens, 8);
}

TEST(Scheduler, MaxNumSeqsCapsTheBatch) {
  FakeEngine e(config(1000, 3), 100);
  for (RequestId id = 1; id <= 7; ++id) ASSERT_TRUE(e.scheduler().add(make_request(id, 2, 5)).ok());
  const StepPlan plan = e.step();
  EXPECT_EQ(plan.sequences.size(), 3u);
  EXPECT_EQ(e.scheduler().stats().num_waiting, 4);
  e.run_to_completion();
}

// The preempted sequence's computed blocks stay cached: when it runs again it recomputes
// only what was evicted meanwhile.
TEST(Scheduler, PreemptsNewestWhenBlocksRunOutAndResumesFromItsCachedBlocks) {
  // 6 blocks of 4 tokens: two requests of 8 prompt + 10 output cannot both finish.
  FakeEngine e(config(64, 4), 6);
  ASSERT_TRUE(e.scheduler().add(make_request(1, 8, 10)).ok());
  ASSERT_TRUE(e.scheduler().add(make_request(2, 8, 10)).ok());
  bool saw_preemption = false;
  bool resumed_from_cache = false;
  while (e.scheduler().has_unfinished()) {
    const StepPlan plan = e.step();
    for (RequestId id : plan.preempted) {
      saw_preemption = true;
      EXPECT_EQ(id, 2u) << "the newest sequence is preempted first";
    }
    for (const ScheduledSequence& s : plan.sequences) {
      const Sequence* seq = e.scheduler().find(s.id);
      if (seq != nullptr && seq->num_preemptions > 0 && s.num_kept_blocks == 0 && s.num_computed_tokens > 0) {
        resumed_from_cache = true;
      }
    }
    ASSERT_LT(e.steps_, 1000);
  }
  EXPECT_TRUE(saw_preemption);
  EXPECT_TRUE(resumed_from_cache);
  EXPECT_GT(e.scheduler().stats().num_preemptions, 0);
  for (RequestId id : {1u, 2u}) {
    EXPECT_EQ(e.times_announced_[id], 1) << "a preempted request's prompt is not sent again";
    ASSERT_EQ(e.outputs_[id].size(), 10u);
    for (size_t i = 0; i < 10; ++i) EXPECT_EQ(e.outputs_[id][i], fake_token(id, i));
  }
  expect_nothing_held(e.scheduler(), 6);
}

TEST(Scheduler, RecomputeAfterPreemptionReplaysPromptAndOutputs) {
  FakeEngine e(config(64, 4), 5);
  ASSERT_TRUE(e.scheduler().add(make_request(1, 6, 12)).ok());
  ASSERT_TRUE(e.scheduler().add(make_request(2, 6, 12)).ok());
  for (int i = 0; i < 200 && e.scheduler().has_unfinished(); ++i) {
    const StepPlan plan = e.step();
    // A recomputed chunk covers outputs too; the ranks' view (checked each step by the
    // fake engine) must hold them, with the replacement block table.
    for (const ScheduledSequence& s : plan.sequences) {
      const Sequence* seq = e.scheduler().find(s.id);
      if (seq != nullptr && seq->num_preemptions > 0 && s.num_computed_tokens == 0) {
        EXPECT_EQ(s.num_kept_blocks, 0) << "a recomputed sequence gets a whole new table";
      }
    }
  }
  EXPECT_FALSE(e.scheduler().has_unfinished());
  EXPECT_GT(e.scheduler().stats().num_preemptions, 0);
}

TEST(Scheduler, RequestThatCanNeverFitFailsAtOnce) {
  Scheduler s(config(64, 4), 4);  // 16 positions
  const Status st = s.add(make_request(1, 16, 5));  // 16 + 1 > 16
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("KV blocks"), std::string::npos) << st.message();
  EXPECT_TRUE(s.add(make_request(2, 15, 5)).ok());
  EXPECT_FALSE(s.add(make_request(2, 3, 5)).ok()) << "duplicate id";
  Request empty{.id = 3};
  EXPECT_FALSE(s.add(empty).ok());
}

TEST(Scheduler, AbortMidPrefillAndMidDecodeFreesBlocksInTheSameStep) {
  FakeEngine e(config(8, 4), 50);
  ASSERT_TRUE(e.scheduler().add(make_request(1, 30, 10)).ok());  // prefill spans 4 steps
  ASSERT_TRUE(e.scheduler().add(make_request(2, 2, 50)).ok());
  e.step();
  e.step();
  e.step();
  ASSERT_EQ(e.scheduler().find(1)->status, SequenceStatus::kRunning);
  ASSERT_LT(e.scheduler().find(1)->num_computed_tokens, 30) << "still mid-prefill";
  EXPECT_TRUE(e.scheduler().abort(1));
  EXPECT_FALSE(e.scheduler().abort(1));
  const int64_t used_by_2 = static_cast<int64_t>(e.scheduler().find(2)->block_table.size());
  EXPECT_EQ(e.scheduler().stats().blocks.used_by_running, used_by_2);
  e.step();
  EXPECT_EQ(e.finished_[1], FinishReason::kAbort);
  ASSERT_GT(e.scheduler().find(2)->output_ids.size(), 0u);  // decoding
  EXPECT_TRUE(e.scheduler().abort(2));
  expect_nothing_held(e.scheduler(), 50);
  e.step();
  EXPECT_EQ(e.finished_[2], FinishReason::kAbort);
  EXPECT_FALSE(e.scheduler().has_unfinished());
}

TEST(Scheduler, StopTokensAndContextEndFinishSequences) {
  SchedulerConfig c = config(64, 4);
  c.max_model_len = 10;
  Scheduler s(c, 100);
  Request r = make_request(1, 4, 100);
  ASSERT_TRUE(s.add(r).ok());
  Request stop = make_request(2, 4, 100);
  stop.sampling.stop_token_ids = {77};
  ASSERT_TRUE(s.add(stop).ok());
  Request eos = make_request(3, 4, 100);
  ASSERT_TRUE(s.add(eos).ok());
  std::map<RequestId, std::vector<int32_t>> out;
  std::map<RequestId, FinishReason> fin;
  for (int step = 0; step < 50 && s.has_unfinished(); ++step) {
    StepPlan plan = s.schedule();
    StepResult result;
    for (auto& seq : plan.sequences) {
      if (!seq.sample) continue;
      const size_t i = out[seq.id].size();
      result.sampled[seq.id] = {{.id = seq.id == 2 && i == 2 ? 77 : seq.id == 3 && i == 1 ? 2 : 40}};
    }
    for (auto& o : s.update(plan, result)) {
      for (auto& t : o.new_tokens) out[o.id].push_back(t.id);
      if (o.finished()) fin[o.id] = o.finish_reason;
    }
  }
  EXPECT_EQ(fin[1], FinishReason::kLength);
  EXPECT_EQ(out[1].size(), 7u) << "positions 0..9 fed: 4 prompt + 6 fed outputs + 1 final";
  EXPECT_EQ(fin[2], FinishReason::kStop);
  EXPECT_EQ(out[2].size(), 2u) << "the stop id is not output";
  EXPECT_EQ(fin[3], FinishReason::kStop);
  EXPECT_EQ(out[3].size(), 1u);
}

// stop_after_tokens ends a request as EOS would, with every token output; max_tokens still
// wins (as "length") when it comes first or at the same count.
TEST(Scheduler, StopAfterTokensFinishesLikeEos) {
  FakeEngine e(config(64, 4), 100);
  Request forced = make_request(1, 5, 100);
  forced.sampling.stop_after_tokens = 3;
  Request capped = make_request(2, 5, 4);
  capped.sampling.stop_after_tokens = 9;
  Request same = make_request(3, 5, 6);
  same.sampling.stop_after_tokens = 6;
  for (const Request& r : {forced, capped, same}) ASSERT_TRUE(e.scheduler().add(r).ok());
  e.run_to_completion();
  EXPECT_EQ(e.finished_[1], FinishReason::kStop);
  EXPECT_EQ(e.outputs_[1].size(), 3u);
  EXPECT_EQ(e.finished_[2], FinishReason::kLength);
  EXPECT_EQ(e.outputs_[2].size(), 4u);
  EXPECT_EQ(e.finished_[3], FinishReason::kLength);
  EXPECT_EQ(e.outputs_[3].size(), 6u);
}

TEST(Scheduler, StaticBatchingAdmitsOnlyIntoAnEmptyBatch) {
  SchedulerConfig c = config(64, 2);
  c.static_batching = true;
  FakeEngine e(c, 100);
  ASSERT_TRUE(e.scheduler().add(make_request(1, 3, 2)).ok());
  ASSERT_TRUE(e.scheduler().add(make_request(2, 3, 8)).ok());
  ASSERT_TRUE(e.scheduler().add(make_request(3, 3, 2)).ok());
  e.step();
  while (e.scheduler().find(2) != nullptr) {
    EXPECT_EQ(e.scheduler().stats().num_waiting, 1) << "request 3 waits for the whole batch";
    e.step();
  }
  e.run_to_completion();
  EXPECT_EQ(e.outputs_[3].size(), 2u);
}

// Thousands of random operation sequences on tiny caches: after every operation the block
// accounting adds up, and at the end no block is referenced: each is free or cached.
TEST(SchedulerProperty, RandomOperationsKeepBlockAccountingExact) {
  std::mt19937 rng(2024);
  int64_t hits = 0, evictions = 0, drafts = 0, accepted = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    const int32_t block_size = 1 + static_cast<int32_t>(rng() % 8);
    const int64_t num_blocks = 3 + static_cast<int64_t>(rng() % 20);
    SchedulerConfig c = config(1 + static_cast<int32_t>(rng() % 24), 1 + static_cast<int32_t>(rng() % 6), block_size);
    c.watermark = (rng() % 3) * 0.05;
    // Every other trial speculates: drafts take blocks and budget, and rejected ones give back.
    c.num_speculative_tokens = 1 + static_cast<int32_t>(rng() % 5);
    c.speculative_max_batch = static_cast<int32_t>(rng() % 6);
    c.speculative_adaptive = rng() % 2 == 0;
    FakeEngine e(c, num_blocks);
    FakeProposer proposer;
    if (trial % 2 == 1) e.scheduler().set_proposer(&proposer);
    RequestId next_id = 1;
    std::vector<RequestId> live;
    const int ops = 20 + static_cast<int>(rng() % 60);
    for (int op = 0; op < ops; ++op) {
      switch (rng() % 4) {
        case 0: {
          // Half the prompts start with one of three shared prefixes: cached blocks get
          // shared, parked, taken back and evicted.
          const auto len = 1 + static_cast<int32_t>(rng() % (block_size * num_blocks));
          const auto max_tokens = 1 + static_cast<int32_t>(rng() % 12);
          const auto r = rng() % 2 ? make_request(next_id, len, max_tokens)
                                   : make_shared_prefix_request(next_id, static_cast<int>(rng() % 3), len, max_tokens);
          if (e.scheduler().add(r).ok()) live.push_back(next_id);
          ++next_id;
          break;
        }
        case 1:
          if (!live.empty()) e.scheduler().abort(live[rng() % live.size()]);
          break;
        default:
          e.step();
      }
      const SchedulerStats st = e.scheduler().stats();
      ASSERT_EQ(st.blocks.free + st.blocks.cached + st.blocks.used_by_running, num_blocks);
    }
    e.run_to_completion(20000);
    SCOPED_TRACE("trial " + std::to_string(trial));
    expect_nothing_held(e.scheduler(), num_blocks);
    // Every request that was not aborted produced exactly its fake tokens.
    for (auto& [id, toks] : e.outputs_) {
      for (size_t i = 0; i < toks.size(); ++i) ASSERT_EQ(toks[i], fake_token(id, i));
    }
    hits += e.scheduler().stats().prefix_cache_hits;
    evictions += e.scheduler().stats().prefix_cache_evictions;
    drafts += e.scheduler().stats().spec_draft_tokens;
    accepted += e.scheduler().stats().spec_accepted_tokens;
  }
  EXPECT_GT(accepted, 0) << "the speculating trials were meant to accept drafts";
  EXPECT_GT(drafts, accepted) << "and to reject some";
  EXPECT_GT(hits, 0) << "the trials were meant to share cached prefixes";
  EXPECT_GT(evictions, 0) << "the trials were meant to evict cached prefixes";
}

// The first chunk planned for request `id` (running steps until there is one).
ScheduledSequence first_chunk(FakeEngine& e, RequestId id) {
  for (int i = 0; i < 1000; ++i) {
    const StepPlan plan = e.step();
    for (const ScheduledSequence& s : plan.sequences) {
      if (s.id == id) return s;
    }
  }
  ADD_FAILURE() << "request " << id << " was never scheduled";
  return {};
}

TEST(Speculation, DraftsYieldSeveralTokensPerStepAndRejectedSlotsGoBack) {
  SchedulerConfig c = config(64, 4);
  c.num_speculative_tokens = 4;
  FakeEngine with(c, 100), without(c, 100);
  FakeProposer proposer;
  with.scheduler().set_proposer(&proposer);
  for (RequestId id : {1, 2, 3}) {
    ASSERT_TRUE(with.scheduler().add(make_request(id, 9, 40)).ok());
    ASSERT_TRUE(without.scheduler().add(make_request(id, 9, 40)).ok());
  }
  with.run_to_completion();
  without.run_to_completion();
  EXPECT_EQ(with.outputs_, without.outputs_);
  for (RequestId id : {1, 2, 3}) EXPECT_EQ(with.outputs_[id].size(), 40u);
  EXPECT_LT(with.steps_ * 2, without.steps_) << "accepted drafts were meant to save steps";
  const SchedulerStats st = with.scheduler().stats();
  EXPECT_GT(st.spec_accepted_tokens, 0);
  EXPECT_LT(st.spec_accepted_tokens, st.spec_draft_tokens);
  EXPECT_GT(proposer.forgotten, 0) << "finished requests are forgotten";
  expect_nothing_held(with.scheduler(), 100);
}

TEST(Speculation, OptedOutRequestsAndLargeBatchesRunNoDrafts) {
  SchedulerConfig c = config(64, 8);
  c.speculative_max_batch = 2;
  FakeEngine e(c, 200);
  FakeProposer proposer;
  e.scheduler().set_proposer(&proposer);
  Request opted_out = make_request(1, 5, 20);
  opted_out.sampling.speculative = false;
  ASSERT_TRUE(e.scheduler().add(opted_out).ok());
  ASSERT_TRUE(e.scheduler().add(make_request(2, 5, 20)).ok());
  e.step();  // both prompts
  StepPlan plan = e.step();
  ASSERT_EQ(plan.sequences.size(), 2u);
  for (const ScheduledSequence& s : plan.sequences) EXPECT_EQ(s.draft_token_ids.empty(), s.id == 1) << s.id;
  for (RequestId id = 3; id <= 5; ++id) ASSERT_TRUE(e.scheduler().add(make_request(id, 5, 20)).ok());
  e.step();  // three more prompts: five decode next, more than speculative_max_batch
  plan = e.step();
  ASSERT_EQ(plan.sequences.size(), 5u);
  for (const ScheduledSequence& s : plan.sequences) EXPECT_TRUE(s.draft_token_ids.empty());
  e.run_to_completion();
  for (auto& [id, toks] : e.outputs_) {
    for (size_t i = 0; i < toks.size(); ++i) ASSERT_EQ(toks[i], fake_token(id, i));
  }
}

TEST(Speculation, DraftsNeverRunPastMaxTokensOrTheContext) {
  SchedulerConfig c = config(64, 4);
  c.num_speculative_tokens = 8;
  c.max_model_len = 20;
  FakeEngine e(c, 100);
  FakeProposer proposer;
  e.scheduler().set_proposer(&proposer);
  ASSERT_TRUE(e.scheduler().add(make_request(1, 5, 6)).ok());    // max_tokens 6
  ASSERT_TRUE(e.scheduler().add(make_request(2, 10, 100)).ok());  // the context: 20 positions
  while (e.scheduler().has_unfinished()) {
    const StepPlan plan = e.step();
    for (const ScheduledSequence& s : plan.sequences) {
      EXPECT_LE(s.num_computed_tokens + s.num_new_tokens, 20) << "request " << s.id;
    }
  }
  EXPECT_EQ(e.outputs_[1].size(), 6u);
  EXPECT_EQ(e.finished_[2], FinishReason::kLength);
  EXPECT_EQ(e.outputs_[2].size(), 11u);  // positions 0..19 fed: 10 prompt + 10 outputs, and one more
}

TEST(PrefixCaching, SecondRequestPrefillsOnlyWhatItDoesNotShare) {
  FakeEngine e(config(64, 4), 50);
  ASSERT_TRUE(e.scheduler().add(make_shared_prefix_request(1, 0, 21, 3, 16)).ok());
  e.run_to_completion();
  ASSERT_TRUE(e.scheduler().add(make_shared_prefix_request(2, 0, 23, 3, 16)).ok());
  const ScheduledSequence s = first_chunk(e, 2);
  EXPECT_EQ(s.num_computed_tokens, 16) << "four shared blocks of 4 come from the cache";
  EXPECT_EQ(s.num_new_tokens, 7);
  e.run_to_completion();
  EXPECT_EQ(e.cached_tokens_[2], 16);
  EXPECT_EQ(e.cached_tokens_[1], 0);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(e.outputs_[2][i], fake_token(2, i));
  const SchedulerStats st = e.scheduler().stats();
  EXPECT_EQ(st.prefix_cache_queries, 21 + 23);
  EXPECT_EQ(st.prefix_cache_hits, 16);
  expect_nothing_held(e.scheduler(), 50);
}

TEST(PrefixCaching, AnIdenticalPromptStillComputesItsLastToken) {
  FakeEngine e(config(64, 4), 50);
  ASSERT_TRUE(e.scheduler().add(make_shared_prefix_request(1, 1, 16, 2)).ok());
  e.run_to_completion();
  ASSERT_TRUE(e.scheduler().add(make_shared_prefix_request(2, 1, 16, 2)).ok());
  const ScheduledSequence s = first_chunk(e, 2);
  EXPECT_EQ(s.num_computed_tokens, 12) << "the last block is recomputed: its last token's logits are needed";
  EXPECT_EQ(s.num_new_tokens, 4);
  EXPECT_TRUE(s.sample);
  e.run_to_completion();
}

TEST(PrefixCaching, RunningSequencesShareBlocksAndOutputsFromDecodeAreCached) {
  FakeEngine e(config(64, 4), 50);
  ASSERT_TRUE(e.scheduler().add(make_shared_prefix_request(1, 2, 12, 20)).ok());
  for (int i = 0; i < 6; ++i) e.step();  // prefilled, decoding
  Request follow_up = make_shared_prefix_request(2, 2, 12, 4);
  // A follow-up turn resends the conversation: prompt plus the first outputs.
  for (size_t i = 0; i < 5; ++i) follow_up.prompt_ids.push_back(e.outputs_[1][i]);
  ASSERT_TRUE(e.scheduler().add(follow_up).ok());
  const ScheduledSequence s = first_chunk(e, 2);
  EXPECT_EQ(s.num_computed_tokens, 16) << "three prompt blocks and one of outputs its decode steps computed";
  const Sequence* first = e.scheduler().find(1);
  const Sequence* second = e.scheduler().find(2);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  for (size_t b = 0; b < 4; ++b) {
    EXPECT_EQ(second->block_table[b], first->block_table[b]);
    EXPECT_EQ(e.scheduler().blocks().ref_count(first->block_table[b]), 2);
  }
  e.run_to_completion();
  // With request 1 done, its output blocks are cached as well.
  Request third = make_shared_prefix_request(3, 2, 12, 1);
  for (size_t i = 0; i < 8; ++i) third.prompt_ids.push_back(e.outputs_[1][i]);
  third.prompt_ids.push_back(5);
  ASSERT_TRUE(e.scheduler().add(third).ok());
  EXPECT_EQ(first_chunk(e, 3).num_computed_tokens, 20);
  e.run_to_completion();
  expect_nothing_held(e.scheduler(), 50);
}

TEST(PrefixCaching, DisabledRecomputesEveryPrompt) {
  SchedulerConfig c = config(64, 4);
  c.enable_prefix_caching = false;
  FakeEngine e(c, 50);
  ASSERT_TRUE(e.scheduler().add(make_shared_prefix_request(1, 0, 20, 2)).ok());
  e.run_to_completion();
  EXPECT_EQ(e.scheduler().stats().blocks.cached, 0);
  ASSERT_TRUE(e.scheduler().add(make_shared_prefix_request(2, 0, 20, 2)).ok());
  EXPECT_EQ(first_chunk(e, 2).num_computed_tokens, 0);
  e.run_to_completion();
  EXPECT_EQ(e.scheduler().stats().prefix_cache_hits, 0);
  EXPECT_EQ(e.scheduler().stats().blocks.free, 50);
}

// Cached blocks are reclaimable: a request larger than the free pool evicts the least
// recently released prefix first and keeps the newer one.
TEST(PrefixCaching, EvictsTheLeastRecentlyReleasedPrefixWhenThePoolRunsOut) {
  FakeEngine e(config(64, 4), 12);
  ASSERT_TRUE(e.scheduler().add(make_shared_prefix_request(1, 0, 17, 1)).ok());  // 4 full + 1
  e.run_to_completion();
  ASSERT_TRUE(e.scheduler().add(make_shared_prefix_request(2, 1, 17, 1)).ok());
  e.run_to_completion();
  EXPECT_EQ(e.scheduler().stats().blocks.cached, 8);
  EXPECT_EQ(e.scheduler().stats().blocks.free, 4);
  ASSERT_TRUE(e.scheduler().add(make_request(3, 30, 1)).ok());  // 8 blocks: evicts 4
  e.run_to_completion();
  EXPECT_EQ(e.scheduler().stats().prefix_cache_evictions, 4);
  ASSERT_TRUE(e.scheduler().add(make_shared_prefix_request(4, 1, 17, 1)).ok());
  EXPECT_EQ(first_chunk(e, 4).num_computed_tokens, 16) << "family 1 was released last: still cached";
  e.run_to_completion();
  ASSERT_TRUE(e.scheduler().add(make_shared_prefix_request(5, 0, 17, 1)).ok());
  EXPECT_EQ(first_chunk(e, 5).num_computed_tokens, 0) << "family 0 was evicted";
  e.run_to_completion();
  expect_nothing_held(e.scheduler(), 12);
}

}  // namespace
}  // namespace strata
