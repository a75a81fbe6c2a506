// The scheduler tests' harness: a fake model whose token depends only on the request and
// its position, a fake proposer, and FakeEngine, which drives the scheduler as the engine
// does and checks every step's invariants.
#pragma once

#include <algorithm>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "worker/engine/request_states.h"
#include "worker/engine/scheduler.h"

namespace strata::testing {

// The token a fake model emits for request `id` at output index `i` (never a stop id).
inline int32_t fake_token(RequestId id, size_t i) { return static_cast<int32_t>(10 + (id * 7 + i * 13) % 90); }

inline Request make_request(RequestId id, int32_t prompt_len, int32_t max_tokens) {
  Request r{.id = id};
  for (int32_t i = 0; i < prompt_len; ++i) r.prompt_ids.push_back(static_cast<int32_t>(3 + (id + i) % 50));
  r.sampling.temperature = 0.0f;
  r.sampling.max_tokens = max_tokens;
  return r;
}

// A request whose prompt starts with shared prefix `family` (the same tokens for every
// request of that family) and ends with tokens of its own.
inline Request make_shared_prefix_request(RequestId id, int family, int32_t prompt_len, int32_t max_tokens,
                                   int32_t shared_len = 1 << 20) {
  Request r = make_request(id, prompt_len, max_tokens);
  for (int32_t i = 0; i < std::min(prompt_len, shared_len); ++i) {
    r.prompt_ids[static_cast<size_t>(i)] = static_cast<int32_t>(60 + (family * 11 + i * 3) % 37);
  }
  return r;
}

// The plan as the other ranks of a worker group receive it: through msgpack.
inline StepPlan over_the_wire(const StepPlan& plan) {
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
inline void expect_nothing_held(const Scheduler& s, int64_t num_blocks) {
  const SchedulerStats st = s.stats();
  EXPECT_EQ(st.blocks.used_by_running, 0);
  EXPECT_EQ(st.blocks.free + st.blocks.cached, num_blocks);
  for (int32_t b = 0; b < num_blocks; ++b) EXPECT_EQ(s.blocks().ref_count(b), 0) << "block " << b;
}

inline SchedulerConfig scheduler_config(int32_t budget, int32_t max_seqs, int32_t block_size = 4) {
  return {.max_num_batched_tokens = budget, .max_num_seqs = max_seqs, .block_size = block_size,
          .watermark = 0.0, .max_model_len = 4096, .stop_token_ids = {2}};
}


}  // namespace strata::testing
