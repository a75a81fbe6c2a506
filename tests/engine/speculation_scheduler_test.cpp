// Speculative decoding in the scheduler, as plain logic: drafts from a fake proposer take
// budget and blocks, yield several tokens a step and give back what was rejected; the
// governor that switches drafting off where it measured slower.
#include <gtest/gtest.h>

#include "tests/engine/fake_engine.h"
#include "worker/engine/speculative/speculation_governor.h"

namespace strata {
namespace {

using namespace strata::testing;

TEST(Speculation, DraftsYieldSeveralTokensPerStepAndRejectedSlotsGoBack) {
  SchedulerConfig c = scheduler_config(64, 4);
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
  SchedulerConfig c = scheduler_config(64, 8);
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
  SchedulerConfig c = scheduler_config(64, 4);
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

TEST(SpeculationGovernor, TriesBothThenRunsTheFasterAndRetriesTheOtherNowAndThen) {
  SpeculationGovernor g;
  for (int i = 0; i < SpeculationGovernor::kTrials; ++i) {
    ASSERT_TRUE(g.should_speculate(1));
    g.observe(1, true, 3, 0.5);  // 6 tok/s with drafts
  }
  for (int i = 0; i < SpeculationGovernor::kTrials; ++i) {
    ASSERT_FALSE(g.should_speculate(1));
    g.observe(1, false, 1, 0.125);  // 8 tok/s without
  }
  int with = 0;
  for (int i = 0; i < 4 * SpeculationGovernor::kRetryEvery; ++i) with += g.should_speculate(1);
  EXPECT_EQ(with, 4) << "drafts lose: re-tried once every kRetryEvery decisions";
  // Other batch sizes are measured on their own: 4 sequences still start by trying drafts.
  EXPECT_TRUE(g.should_speculate(4));
  // Traffic where drafts win turns them back on.
  for (int i = 0; i < 12; ++i) g.observe(1, true, 5, 0.25);  // 20 tok/s
  EXPECT_GT(g.rate(1, true), g.rate(1, false));
  int kept = 0;
  for (int i = 0; i < SpeculationGovernor::kRetryEvery; ++i) kept += g.should_speculate(1);
  EXPECT_EQ(kept, SpeculationGovernor::kRetryEvery - 1);
  // Steps that measured nothing teach nothing.
  g.observe(2, true, 0, 1.0);
  g.observe(2, false, 3, 0.0);
  EXPECT_EQ(g.rate(2, true), 0);
  EXPECT_EQ(g.rate(2, false), 0);
}

}  // namespace
}  // namespace strata
