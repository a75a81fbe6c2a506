// The iteration scheduler as plain logic: no model, no KV tensors. A fake runner "samples"
// a token that depends only on the request and its position, so every property of the
// schedule (budgets, decode-first order, preemption, recompute, aborts, block accounting)
// is checked without weights.
#include <algorithm>
#include <map>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "tests/engine/fake_engine.h"
#include "worker/engine/request_states.h"
#include "worker/engine/scheduler.h"

namespace strata {
namespace {

using namespace strata::testing;

TEST(Scheduler, RunsMixedLengthsToCompletionWithExactOutputs) {
  FakeEngine e(scheduler_config(32, 8), 200);
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
  FakeEngine e(scheduler_config(10, 8), 100);
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
  FakeEngine e(scheduler_config(1000, 3), 100);
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
  FakeEngine e(scheduler_config(64, 4), 6);
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
  FakeEngine e(scheduler_config(64, 4), 5);
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
  Scheduler s(scheduler_config(64, 4), 4);  // 16 positions
  const Status st = s.add(make_request(1, 16, 5));  // 16 + 1 > 16
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("KV blocks"), std::string::npos) << st.message();
  EXPECT_TRUE(s.add(make_request(2, 15, 5)).ok());
  EXPECT_FALSE(s.add(make_request(2, 3, 5)).ok()) << "duplicate id";
  Request empty{.id = 3};
  EXPECT_FALSE(s.add(empty).ok());
}

TEST(Scheduler, AbortMidPrefillAndMidDecodeFreesBlocksInTheSameStep) {
  FakeEngine e(scheduler_config(8, 4), 50);
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
  SchedulerConfig c = scheduler_config(64, 4);
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
  FakeEngine e(scheduler_config(64, 4), 100);
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
  SchedulerConfig c = scheduler_config(64, 2);
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
    SchedulerConfig c = scheduler_config(1 + static_cast<int32_t>(rng() % 24), 1 + static_cast<int32_t>(rng() % 6), block_size);
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

TEST(PrefixCaching, SecondRequestPrefillsOnlyWhatItDoesNotShare) {
  FakeEngine e(scheduler_config(64, 4), 50);
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
  FakeEngine e(scheduler_config(64, 4), 50);
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
  FakeEngine e(scheduler_config(64, 4), 50);
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
  SchedulerConfig c = scheduler_config(64, 4);
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
  FakeEngine e(scheduler_config(64, 4), 12);
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
