// The simulator's clock and bookkeeping on hand-worked cases, and the policies' defining
// behaviour (reserve-max never preempts, on-demand over-admits) through the real router and
// worker schedulers.
#include "tools/sim/simulator.h"

#include <gtest/gtest.h>

#include "tools/bench/trace_shaping.h"

namespace strata::sim {
namespace {

SimConfig config(int64_t blocks, int32_t block_size = 1, CostModel cost = {.a = 0.010}) {
  SimConfig c{.num_groups = 1, .blocks_per_group = blocks, .cost = cost};
  c.worker.block_size = block_size;
  c.worker.max_num_batched_tokens = 64;
  c.worker.max_num_seqs = 16;
  c.worker.max_model_len = 1024;
  c.worker.watermark = 0;
  return c;
}

SimPolicy policy(const std::string& name) {
  auto p = parse_sim_policy(name, {});
  EXPECT_TRUE(p.ok()) << p.status().message();
  return *p;
}

TEST(Simulator, OneRequestTakesOneStepPerToken) {
  // Step time 10 ms + 1 ms per prefill token: the prefill step (8 tokens) yields the first
  // token at 18 ms, then four decode steps of 10 ms each.
  const SimConfig c = config(100, 1, {.a = 0.010, .b = 0.001});
  auto r = simulate(c, policy("on-demand"), {{.arrival_s = 2, .prompt_tokens = 8, .output_tokens = 5, .max_tokens = 5}});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->requests.size(), 1u);
  EXPECT_TRUE(r->requests[0].ok);
  EXPECT_EQ(r->requests[0].output_tokens, 5);
  EXPECT_NEAR(r->requests[0].ttft_s, 0.018, 1e-12);
  EXPECT_NEAR(r->requests[0].e2e_s, 0.058, 1e-12);
  EXPECT_NEAR(r->duration_s, 0.058, 1e-12);
  EXPECT_EQ(r->steps, 5);
  EXPECT_EQ(r->preemptions, 0);
  EXPECT_NEAR(r->busy_fraction, 1.0, 1e-9);
}

TEST(Simulator, StopsAtTheAnswersLengthBelowTheCap) {
  auto r = simulate(config(100), policy("predicted"),
                    {{.arrival_s = 0, .prompt_tokens = 4, .output_tokens = 3, .max_tokens = 50}});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->requests[0].ok);
  EXPECT_EQ(r->requests[0].output_tokens, 3);
  EXPECT_NEAR(r->requests[0].e2e_s, 0.030, 1e-12);
}

TEST(Simulator, ContextTermChargesEveryCachedPosition) {
  // d = 1 ms per attended position. Prefill of 4 attends 4 (14 ms); the decode step feeds
  // the first output at position 4 and attends 5 (15 ms).
  const SimConfig c = config(100, 1, {.a = 0.010, .d = 0.001});
  auto r = simulate(c, policy("on-demand"), {{.arrival_s = 0, .prompt_tokens = 4, .output_tokens = 2, .max_tokens = 2}});
  ASSERT_TRUE(r.ok());
  EXPECT_NEAR(r->requests[0].ttft_s, 0.014, 1e-12);
  EXPECT_NEAR(r->requests[0].e2e_s, 0.029, 1e-12);
}

TEST(Simulator, TheDefaultPathSpreadsRequestsOverGroups) {
  SimConfig c = config(100);
  c.num_groups = 2;
  const SimRequest req{.arrival_s = 0, .prompt_tokens = 8, .output_tokens = 4, .max_tokens = 4};
  auto two = simulate(c, policy("on-demand"), {req, req});
  ASSERT_TRUE(two.ok());
  // Each group runs one alone: both finish when a solo request would.
  EXPECT_NEAR(two->requests[0].e2e_s, 0.040, 1e-12);
  EXPECT_NEAR(two->requests[1].e2e_s, 0.040, 1e-12);
}

// 12 one-token blocks; four requests of prompt 2 that grow to 8 tokens, asking for up to 8.
std::vector<SimRequest> crowd() {
  return std::vector<SimRequest>(4, SimRequest{.arrival_s = 0, .prompt_tokens = 2, .output_tokens = 6, .max_tokens = 8});
}

TEST(Simulator, OnDemandOverAdmitsAndPreemptsWhereReserveMaxWaits) {
  auto on_demand = simulate(config(12), policy("on-demand"), crowd());
  auto reserve = simulate(config(12), policy("reserve-max"), crowd());
  ASSERT_TRUE(on_demand.ok() && reserve.ok());
  EXPECT_GT(on_demand->preemptions, 0);
  EXPECT_EQ(reserve->preemptions, 0);
  for (const auto* r : {&*on_demand, &*reserve}) {
    for (const SimRequestResult& q : r->requests) {
      EXPECT_TRUE(q.ok);
      EXPECT_EQ(q.output_tokens, 6);
    }
    EXPECT_GT(r->kv_utilization_mean, 0.0);
    EXPECT_LE(r->kv_utilization_max, 1.0);
  }
  // prompt 2 + max 8 = 10 of 12 blocks: reserve-max runs them one at a time, six steps each.
  EXPECT_NEAR(reserve->duration_s, 4 * 6 * 0.010, 1e-9);
}

TEST(Simulator, FullRouterQueueAnswers429) {
  SimPolicy p = policy("reserve-max");
  p.router.max_queue_requests = 2;
  auto r = simulate(config(12), p, crowd());
  ASSERT_TRUE(r.ok());
  int rejected = 0;
  for (const SimRequestResult& q : r->requests) rejected += q.failure == "429";
  // The first is dispatched at once only after all four arrived (same instant): two wait, two
  // are refused.
  EXPECT_EQ(rejected, 2);
}

TEST(SimPolicy, ParsesAdmissionAndOrder) {
  EXPECT_TRUE(std::holds_alternative<router::OnDemand>(policy("on-demand").router.admission));
  EXPECT_TRUE(std::holds_alternative<router::Fcfs>(policy("on-demand").router.order));
  EXPECT_TRUE(std::holds_alternative<router::ShortestPredictedFirst>(policy("on-demand+sjf").router.order));
  EXPECT_TRUE(std::holds_alternative<router::Predicted>(policy("predicted").router.admission));
  auto bad = parse_sim_policy("greedy", {});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("reserve-max"), std::string::npos) << bad.status().message();
  EXPECT_FALSE(parse_sim_policy("predicted+lifo", {}).ok());
}

TEST(TraceShaping, ScalesClampsAndCaps) {
  const std::vector<TraceRequest> rows = {{.arrival_s = 0, .prompt_tokens = 1000, .output_tokens = 10},
                                          {.arrival_s = 1.5, .prompt_tokens = 3, .output_tokens = 0},
                                          {.arrival_s = 2, .prompt_tokens = 40, .output_tokens = 700}};
  const auto s = bench::shape_trace(rows, {.num_requests = 3, .length_scale = 0.5, .max_input_tokens = 256,
                                           .max_output_tokens = 300, .max_tokens_cap = 64});
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].input_tokens, 256);  // 500 clamped
  EXPECT_EQ(s[0].output_tokens, 5);
  EXPECT_EQ(s[0].max_tokens, 64);
  EXPECT_EQ(s[1].input_tokens, 2);    // round(1.5)
  EXPECT_EQ(s[1].output_tokens, 1);   // at least one
  EXPECT_DOUBLE_EQ(s[1].arrival_s, 1.5);
  EXPECT_EQ(s[2].output_tokens, 300);
  EXPECT_EQ(s[2].max_tokens, 300);    // the cap never cuts an answer
  EXPECT_EQ(bench::shape_trace(rows, {.num_requests = 1}).size(), 1u);
}

}  // namespace
}  // namespace strata::sim
