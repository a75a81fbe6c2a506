#include "router/scheduling/router_scheduler.h"

#include <map>
#include <optional>

#include <gtest/gtest.h>

namespace strata::router {
namespace {

RequestFeatures features(int64_t prompt, int64_t max_tokens) {
  return {.prompt_tokens = prompt, .max_tokens = max_tokens, .route = Route::kCompletions};
}

GroupSnapshot group(std::string id, int64_t total_blocks, int32_t block_size = 1) {
  return {.group_id = std::move(id), .available = true, .total_blocks = total_blocks,
          .free_blocks = total_blocks, .block_size = block_size};
}

// One group that holds one 60-token prompt at a time; a long request (max_tokens 512) at
// t = 0, then two short ones (max_tokens 4) every second. Returns when the long one is
// dispatched, or nullopt if not within 100 s.
std::optional<int> long_request_dispatch_time(double max_wait_s) {
  HistogramPredictor predictor;
  RouterScheduler s({.order = ShortestPredictedFirst{}, .max_wait_s = max_wait_s}, predictor);
  const std::vector<GroupSnapshot> groups{group("g", 100)};
  EXPECT_TRUE(s.enqueue({.id = 1, .features = features(60, 512)}, 0).ok());
  uint64_t next_id = 2;
  std::optional<uint64_t> running;
  for (int t = 0; t < 100; ++t) {
    if (running) s.on_finished(*running, 4, false);
    running.reset();
    for (int k = 0; k < 2; ++k) EXPECT_TRUE(s.enqueue({.id = next_id++, .features = features(60, 4)}, t).ok());
    const auto d = s.schedule(t, groups);
    EXPECT_LE(d.dispatches.size(), 1u);
    if (d.dispatches.empty()) continue;
    if (d.dispatches[0].id == 1) return t;
    running = d.dispatches[0].id;
  }
  return std::nullopt;
}

TEST(RouterScheduler, ShortestFirstStarvesALongRequestWithoutAging) {
  EXPECT_FALSE(long_request_dispatch_time(1e9).has_value());
}

TEST(RouterScheduler, AgingBoundsTheWaitUnderAStreamOfShortRequests) {
  const auto t = long_request_dispatch_time(5);
  ASSERT_TRUE(t.has_value());
  EXPECT_LE(*t, 6);
}

TEST(RouterScheduler, PlacesOnTheLessLoadedGroup) {
  HistogramPredictor predictor;
  RouterScheduler s({}, predictor);
  const std::vector<GroupSnapshot> groups{group("a", 1000), group("b", 1000)};
  ASSERT_TRUE(s.enqueue({.id = 1, .features = features(100, 64)}, 0).ok());
  const auto first = s.schedule(0, groups);
  ASSERT_EQ(first.dispatches.size(), 1u);
  ASSERT_TRUE(s.enqueue({.id = 2, .features = features(10, 64)}, 0).ok());
  const auto second = s.schedule(0, groups);
  ASSERT_EQ(second.dispatches.size(), 1u);
  EXPECT_NE(first.dispatches[0].group_id, second.dispatches[0].group_id);
  EXPECT_EQ(s.num_running(), 2u);
  // Unavailable groups get nothing.
  std::vector<GroupSnapshot> down{group("a", 1000)};
  down[0].available = false;
  ASSERT_TRUE(s.enqueue({.id = 3, .features = features(10, 64)}, 0).ok());
  EXPECT_TRUE(s.schedule(0, down).dispatches.empty());
  EXPECT_EQ(s.num_waiting(), 1u);
}

TEST(RouterScheduler, PredictedAdmitsMoreThanReserveMaxWithinCapacity) {
  // Answers are ~50 tokens but max_tokens is 1000. 1000 blocks of 16 tokens.
  const auto run = [](AdmissionPolicy policy) {
    HistogramPredictor predictor;
    for (int i = 0; i < 200; ++i) predictor.observe(features(100, 1000), 50);
    RouterScheduler s({.admission = policy, .quantile = {.initial = 0.9}, .adapt_quantile = false},
                      predictor);
    for (uint64_t id = 1; id <= 200; ++id) EXPECT_TRUE(s.enqueue({.id = id, .features = features(100, 1000)}, 0).ok());
    const std::vector<GroupSnapshot> groups{group("g", 1000, 16)};
    return s.schedule(0, groups).dispatches.size();
  };
  // blocks(100 + 1000) = 69 per request: 14 fit under reserve-max.
  EXPECT_EQ(run(ReserveMax{}), 14u);
  // Predicted: each holds ≤ blocks(100 + 64) = 11 at its peak (q = 0.9 of (45, 64]), and all
  // are predicted to finish together: n·11 ≤ 1000 → at least 80, at most 1000/7 (prompts).
  const size_t predicted = run(Predicted{});
  EXPECT_GE(predicted, 80u);
  EXPECT_LE(predicted, 1000u / 7);
}

TEST(RouterScheduler, BoundedQueueRejectsWith429) {
  HistogramPredictor predictor;
  RouterScheduler by_count({.max_queue_requests = 2}, predictor);
  EXPECT_TRUE(by_count.enqueue({.id = 1, .features = features(10, 8)}, 0).ok());
  EXPECT_TRUE(by_count.enqueue({.id = 2, .features = features(10, 8)}, 0).ok());
  const Status full = by_count.enqueue({.id = 3, .features = features(10, 8)}, 0);
  EXPECT_EQ(full.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(full.message().find("max_queue_requests"), std::string::npos);
  EXPECT_EQ(by_count.enqueue({.id = 1, .features = features(10, 8)}, 0).code(),
            StatusCode::kInvalidArgument);

  RouterScheduler by_tokens({.max_queue_tokens = 150}, predictor);
  EXPECT_TRUE(by_tokens.enqueue({.id = 1, .features = features(100, 8)}, 0).ok());
  const Status tokens = by_tokens.enqueue({.id = 2, .features = features(100, 8)}, 0);
  EXPECT_EQ(tokens.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(tokens.message().find("max_queue_tokens"), std::string::npos);
  by_tokens.cancel(1);
  EXPECT_EQ(by_tokens.num_waiting_tokens(), 0);
  EXPECT_TRUE(by_tokens.enqueue({.id = 2, .features = features(100, 8)}, 0).ok());
}

TEST(RouterScheduler, TheQueueBoundCountsRunningRequestsAndWholeClientRequests) {
  HistogramPredictor predictor;
  RouterScheduler s({.max_queue_requests = 3}, predictor);
  const std::vector<GroupSnapshot> groups{group("g", 1000)};
  ASSERT_TRUE(s.enqueue({.id = 1, .features = features(10, 8)}, 0).ok());
  ASSERT_TRUE(s.enqueue({.id = 2, .features = features(10, 8)}, 0).ok());
  ASSERT_EQ(s.schedule(0, groups).dispatches.size(), 2u);
  EXPECT_EQ(s.num_waiting(), 0u);
  // Two running and none waiting: a client request of two choices would make four.
  const std::vector<SchedulerRequest> pair{{.id = 3, .features = features(10, 8)},
                                           {.id = 4, .features = features(10, 8)}};
  const Status full = s.enqueue(pair, 0);
  EXPECT_EQ(full.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(full.message().find("2 requests unfinished"), std::string::npos) << full.message();
  EXPECT_EQ(s.num_waiting(), 0u);  // all or none: choice 3 was not queued either
  // A finished request whose answer is still on its way keeps its place until released.
  s.on_finished(1, 8, false, /*completed=*/true, /*release=*/false);
  EXPECT_EQ(s.num_running(), 1u);
  EXPECT_EQ(s.num_unfinished(), 2u);
  EXPECT_EQ(s.enqueue(pair, 0).code(), StatusCode::kResourceExhausted);
  s.release(1);
  EXPECT_EQ(s.num_unfinished(), 1u);
  // Released before it finishes (the client went away): nothing is left behind.
  s.release(2);
  s.on_finished(2, 3, false, /*completed=*/false, /*release=*/false);
  EXPECT_EQ(s.num_unfinished(), 0u);
  EXPECT_TRUE(s.enqueue(pair, 0).ok());
  EXPECT_EQ(s.num_waiting(), 2u);
  const std::vector<SchedulerRequest> twice{{.id = 5, .features = features(1, 1)},
                                            {.id = 5, .features = features(1, 1)}};
  EXPECT_EQ(RouterScheduler({}, predictor).enqueue(twice, 0).code(), StatusCode::kInvalidArgument);
}

TEST(RouterScheduler, PlacesOnTheGroupWithFewestInFlightThenMostFreeBlocks) {
  HistogramPredictor predictor;
  RouterScheduler s({}, predictor);
  std::vector<GroupSnapshot> groups{group("a", 1000), group("b", 1000), group("c", 1000)};
  groups[1].free_blocks = 900;  // b: fewer free blocks than a and c, which tie
  for (uint64_t id = 1; id <= 6; ++id) ASSERT_TRUE(s.enqueue({.id = id, .features = features(10, 8)}, 0).ok());
  std::vector<std::string> placed;
  for (const Dispatch& d : s.schedule(0, groups).dispatches) placed.push_back(d.group_id);
  EXPECT_EQ(placed, (std::vector<std::string>{"a", "c", "b", "a", "c", "b"}));
}

// Three conversations (prefixes 100…, 200…, 300…), four turns each, interleaved and all
// still running (each has its first token): how many turns land on the group their
// previous turn went to.
int turns_placed_with_their_prefix(Placement placement) {
  HistogramPredictor predictor;
  RouterScheduler s({.placement = {.placement = placement}}, predictor);
  const std::vector<GroupSnapshot> groups{group("a", 1000, 16), group("b", 1000, 16)};
  std::map<uint64_t, std::string> last_group;
  int with_prefix = 0;
  for (uint64_t turn = 0; turn < 4; ++turn) {
    for (uint64_t conversation : {100u, 200u, 300u}) {
      std::vector<BlockHash> hashes;
      for (uint64_t b = 0; b <= turn; ++b) hashes.push_back(conversation + b);
      const uint64_t id = conversation + turn;
      EXPECT_TRUE(s.enqueue({.id = id, .features = features(16 * (turn + 1), 8), .prefix_hashes = hashes}, 0).ok());
      const auto d = s.schedule(0, groups);
      EXPECT_EQ(d.dispatches.size(), 1u);
      if (d.dispatches.empty()) continue;
      if (turn > 0 && last_group[conversation] == d.dispatches[0].group_id) ++with_prefix;
      last_group[conversation] = d.dispatches[0].group_id;
      s.on_tokens(id, 1);  // its prefill is done: what is left there is its answer
    }
  }
  return with_prefix;
}

TEST(RouterScheduler, PrefixAwarePlacementKeepsAConversationOnTheGroupThatCachesIt) {
  EXPECT_EQ(turns_placed_with_their_prefix(Placement::kPrefixAware), 9);
  // Least loaded alternates a, b, a, …: with three conversations on two groups each one
  // hops between them.
  EXPECT_LT(turns_placed_with_their_prefix(Placement::kLeastLoaded), 9);
}

TEST(RouterScheduler, AGroupThatLeftComesBackWithAColdPrefixIndex) {
  HistogramPredictor predictor;
  RouterScheduler s({}, predictor);
  std::vector<GroupSnapshot> groups{group("a", 1000, 16), group("b", 1000, 16)};
  const std::vector<BlockHash> hashes{7, 8, 9};
  const auto place = [&](uint64_t id) {
    EXPECT_TRUE(s.enqueue({.id = id, .features = features(48, 8), .prefix_hashes = hashes}, 0).ok());
    const auto d = s.schedule(0, groups);
    EXPECT_EQ(d.dispatches.size(), 1u);
    s.on_finished(id, 8, false);
    return d.dispatches.empty() ? "" : d.dispatches[0].group_id;
  };
  groups[0].free_blocks = 10;  // b wins the tie on free blocks
  EXPECT_EQ(place(1), "b");
  groups[0].free_blocks = 1000;
  groups[1].free_blocks = 10;
  EXPECT_EQ(place(2), "b") << "b caches the prefix";
  groups[1].available = false;
  s.schedule(0, groups);  // b is seen gone
  groups[1].available = true;
  EXPECT_EQ(place(3), "a") << "b restarted: nothing is known to be cached anywhere";
}

TEST(RouterScheduler, RefusesAtOnceWhatNoGroupCouldEverHold) {
  HistogramPredictor predictor;
  const std::vector<GroupSnapshot> groups{group("small", 40, 16), group("large", 64, 16)};
  RouterScheduler on_demand({}, predictor);
  ASSERT_TRUE(on_demand.enqueue({.id = 1, .features = features(64 * 16 + 1, 4)}, 0).ok());
  ASSERT_TRUE(on_demand.enqueue({.id = 2, .features = features(64 * 16, 4)}, 0).ok());
  const ScheduleDecisions d = on_demand.schedule(0, groups);
  ASSERT_EQ(d.refused.size(), 1u);
  EXPECT_EQ(d.refused[0].id, 1u);
  EXPECT_NE(d.refused[0].message.find("needs 65 KV blocks"), std::string::npos) << d.refused[0].message;
  EXPECT_NE(d.refused[0].message.find("holds 64"), std::string::npos) << d.refused[0].message;
  ASSERT_EQ(d.dispatches.size(), 1u);
  EXPECT_EQ(d.dispatches[0].group_id, "large");
  EXPECT_EQ(on_demand.num_waiting(), 0u);
  EXPECT_EQ(on_demand.num_running(), 1u);

  // reserve-max needs room for prompt + max_tokens; a full group is not a refusal.
  RouterScheduler reserve({.admission = ReserveMax{}}, predictor);
  ASSERT_TRUE(reserve.enqueue({.id = 1, .features = features(16, 64 * 16)}, 0).ok());
  ASSERT_TRUE(reserve.enqueue({.id = 2, .features = features(16, 60 * 16)}, 0).ok());
  ASSERT_TRUE(reserve.enqueue({.id = 3, .features = features(16, 60 * 16)}, 0).ok());
  const ScheduleDecisions r = reserve.schedule(0, groups);
  ASSERT_EQ(r.refused.size(), 1u);
  EXPECT_EQ(r.refused[0].id, 1u);
  EXPECT_NE(r.refused[0].message.find("max_tokens"), std::string::npos) << r.refused[0].message;
  ASSERT_EQ(r.dispatches.size(), 1u);  // 2 fills `large`; 3 waits for it
  EXPECT_EQ(reserve.num_waiting(), 1u);
  EXPECT_TRUE(reserve.schedule(1, groups).refused.empty());
}

TEST(RouterScheduler, RejectsEarlyWhenThePredictedWaitPassesTheDeadline) {
  HistogramPredictor predictor;
  for (int i = 0; i < 200; ++i) predictor.observe(features(10, 1000), 100);
  RouterScheduler s({.queue_deadline_s = 2}, predictor);
  const std::vector<GroupSnapshot> up{group("g", 1000)};
  // Measure ~100 tokens/s.
  ASSERT_TRUE(s.enqueue({.id = 1, .features = features(10, 1000)}, 0).ok());
  ASSERT_EQ(s.schedule(0, up).dispatches.size(), 1u);
  s.on_tokens(1, 100);
  s.schedule(1, {});
  EXPECT_DOUBLE_EQ(s.tokens_per_s(), 100);
  // Each waiting request is ~110 tokens (median of (91, 128]) of work ahead: ~1.1 s each.
  EXPECT_TRUE(s.enqueue({.id = 2, .features = features(10, 1000)}, 1).ok());
  EXPECT_TRUE(s.enqueue({.id = 3, .features = features(10, 1000)}, 1).ok());
  const Status late = s.enqueue({.id = 4, .features = features(10, 1000)}, 1);
  EXPECT_EQ(late.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(late.message().find("queue_deadline_s"), std::string::npos);
}

TEST(RouterScheduler, TimeoutsDropWaitingRequestsAndReportRunningOnesOnce) {
  HistogramPredictor predictor;
  RouterScheduler s({.request_timeout_s = 10}, predictor);
  const std::vector<GroupSnapshot> up{group("g", 1000)};
  ASSERT_TRUE(s.enqueue({.id = 1, .features = features(10, 8)}, 0).ok());
  ASSERT_EQ(s.schedule(0, up).dispatches.size(), 1u);
  ASSERT_TRUE(s.enqueue({.id = 2, .features = features(10, 8), .timeout_s = 3}, 0).ok());
  EXPECT_TRUE(s.schedule(2.9, {}).timed_out.empty());
  EXPECT_EQ(s.schedule(3, {}).timed_out, (std::vector<uint64_t>{2}));
  EXPECT_EQ(s.num_waiting(), 0u);
  EXPECT_EQ(s.schedule(10, {}).timed_out, (std::vector<uint64_t>{1}));
  EXPECT_TRUE(s.schedule(11, {}).timed_out.empty());
  EXPECT_EQ(s.num_running(), 1u);
  s.on_finished(1, 3, false);
  EXPECT_EQ(s.num_running(), 0u);
}

// Only requests that ended on their own teach the predictor; the median it predicted for
// them comes back for the predicted-vs-actual metric.
TEST(RouterScheduler, OnlyCompletedRequestsTeachThePredictor) {
  HistogramPredictor predictor({.min_mass = 1});
  RouterScheduler s({}, predictor);
  const std::vector<GroupSnapshot> up{group("g", 100000)};
  const RequestFeatures f = features(10, 4096);
  const int64_t cold_median = predictor.predict(f).median();
  for (uint64_t id = 1; id <= 40; ++id) ASSERT_TRUE(s.enqueue({.id = id, .features = f}, 0).ok());
  ASSERT_EQ(s.schedule(0, up).dispatches.size(), 40u);
  // Twenty aborted after 3000 tokens: the predictor must not move.
  for (uint64_t id = 1; id <= 20; ++id) EXPECT_FALSE(s.on_finished(id, 3000, false, /*completed=*/false));
  EXPECT_EQ(predictor.predict(f).median(), cold_median);
  // Twenty that finished after 5 tokens: it learns, and reports what it had predicted.
  for (uint64_t id = 21; id <= 40; ++id) {
    const auto predicted = s.on_finished(id, 5, false);
    ASSERT_TRUE(predicted.has_value());
    EXPECT_EQ(*predicted, cold_median);  // all were predicted before any finished
  }
  EXPECT_LE(predictor.predict(f).median(), 6);
}

TEST(RouterScheduler, GroupPreemptionsRaiseTheAdmissionQuantile) {
  HistogramPredictor predictor;
  RouterScheduler s({.admission = Predicted{}, .quantile = {.initial = 0.8}}, predictor);
  std::vector<GroupSnapshot> groups{group("g", 1000)};
  s.schedule(0, groups);
  groups[0].num_preemptions = 3;
  s.schedule(1, groups);
  EXPECT_GT(s.admission_quantile(), 0.8);
}

}  // namespace
}  // namespace strata::router

#include "router/scheduling/scheduler_config.h"

namespace strata::router {
namespace {

TEST(SchedulerConfigFrom, DefaultsAreTodaysBehaviourAndNamesAreChecked) {
  const RouterConfig defaults;
  const auto c = scheduler_config_from(defaults);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(std::holds_alternative<OnDemand>(c->admission));
  EXPECT_TRUE(std::holds_alternative<Fcfs>(c->order));
  EXPECT_EQ(c->placement.placement, Placement::kPrefixAware);
  EXPECT_EQ(c->max_queue_requests, defaults.scheduling.max_queue_requests);

  RouterConfig bad;
  bad.admission_policy = "greedy";
  EXPECT_EQ(scheduler_config_from(bad).status().code(), StatusCode::kInvalidArgument);
  bad = RouterConfig{};
  bad.order = "lifo";
  EXPECT_NE(scheduler_config_from(bad).status().message().find("`order`"), std::string::npos);
  bad = RouterConfig{};
  bad.placement = "random";
  EXPECT_NE(scheduler_config_from(bad).status().message().find("placement"), std::string::npos);
  RouterConfig predicted;
  predicted.placement = "least-loaded";
  predicted.admission_policy = "predicted";
  predicted.order = "sjf";
  const auto p = scheduler_config_from(predicted);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(std::holds_alternative<Predicted>(p->admission));
  EXPECT_TRUE(std::holds_alternative<ShortestPredictedFirst>(p->order));
  EXPECT_EQ(p->placement.placement, Placement::kLeastLoaded);
}

}  // namespace
}  // namespace strata::router
