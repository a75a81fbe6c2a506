#include <gtest/gtest.h>

#include "router/scheduling/ordering.h"
#include "router/scheduling/placement.h"
#include "router/scheduling/prefix_index.h"

namespace strata::router {
namespace {

const std::vector<QueueEntry> kQueue{
    {.priority = 0, .arrival_s = 0, .predicted_median_tokens = 500},
    {.priority = 0, .arrival_s = 1, .predicted_median_tokens = 10},
    {.priority = 0, .arrival_s = 2, .predicted_median_tokens = 100},
    {.priority = 1, .arrival_s = 3, .predicted_median_tokens = 900},
};

TEST(Ordering, FcfsIsArrivalOrderBelowPriority) {
  EXPECT_EQ(order_queue(Fcfs{}, kQueue, 3, 100), (std::vector<size_t>{3, 0, 1, 2}));
}

TEST(Ordering, SjfIsShortestPredictedMedianFirstBelowPriority) {
  EXPECT_EQ(order_queue(ShortestPredictedFirst{}, kQueue, 3, 100), (std::vector<size_t>{3, 1, 2, 0}));
}

TEST(Ordering, AgedRequestsGoFirstOldestFirst) {
  // With a 10 s bound, at t = 10.5 only entry 0 (the long one, arrived at 0) is aged: it
  // jumps ahead of the shorter ones that SJF would otherwise run first.
  EXPECT_EQ(order_queue(ShortestPredictedFirst{}, kQueue, 10.5, 10), (std::vector<size_t>{3, 0, 1, 2}));
  EXPECT_TRUE(is_aged(kQueue[0], 10.5, 10));
  EXPECT_FALSE(is_aged(kQueue[1], 10.5, 10));
  // Aged requests among themselves go oldest first, whatever their size.
  const std::vector<QueueEntry> q{{.arrival_s = 1, .predicted_median_tokens = 5},
                                  {.arrival_s = 0, .predicted_median_tokens = 50},
                                  {.arrival_s = 30, .predicted_median_tokens = 1}};
  EXPECT_EQ(order_queue(ShortestPredictedFirst{}, q, 31, 10), (std::vector<size_t>{1, 0, 2}));
}

TEST(Ordering, PolicyNamesRoundTrip) {
  for (const char* name : {"fcfs", "sjf"}) {
    const auto p = parse_order_policy(name);
    ASSERT_TRUE(p.ok());
    EXPECT_STREQ(order_policy_name(*p), name);
  }
  EXPECT_FALSE(parse_order_policy("lifo").ok());
}

TEST(Placement, FewestInFlightThenMostFreeBlocksThenFirst) {
  EXPECT_FALSE(pick_group({}).has_value());
  const std::vector<PlacementCandidate> one{{.num_in_flight = 9, .free_blocks = 0}};
  EXPECT_EQ(pick_group(one), size_t{0});
  const std::vector<PlacementCandidate> by_count{{.num_in_flight = 3, .free_blocks = 900},
                                                 {.num_in_flight = 1, .free_blocks = 10},
                                                 {.num_in_flight = 2, .free_blocks = 500}};
  EXPECT_EQ(pick_group(by_count), size_t{1});
  const std::vector<PlacementCandidate> tie{{.num_in_flight = 2, .free_blocks = 10},
                                            {.num_in_flight = 2, .free_blocks = 40},
                                            {.num_in_flight = 2, .free_blocks = 40}};
  EXPECT_EQ(pick_group(tie), size_t{1});  // most free blocks; the first of equals
}

TEST(Placement, AlternatesOverEqualGroupsAsTheCallerCountsItsPlacements) {
  std::vector<PlacementCandidate> groups(3, PlacementCandidate{.num_in_flight = 0, .free_blocks = 64});
  std::vector<int> placed(groups.size(), 0);
  for (int i = 0; i < 30; ++i) {
    const size_t g = *pick_group(groups);
    ++groups[g].num_in_flight;
    ++placed[g];
  }
  EXPECT_EQ(placed, (std::vector<int>{10, 10, 10}));
}

TEST(Placement, PrefixAwarePrefersTheLongestMatchWithinTheBalanceSlack) {
  const PlacementRule prefix{.placement = Placement::kPrefixAware, .balance_slack = 4};
  std::vector<PlacementCandidate> groups{{.num_in_flight = 2, .free_blocks = 50, .matched_tokens = 0},
                                         {.num_in_flight = 5, .free_blocks = 50, .matched_tokens = 32},
                                         {.num_in_flight = 6, .free_blocks = 50, .matched_tokens = 64}};
  EXPECT_EQ(pick_group(groups, prefix), size_t{2}) << "6 in flight is within 2 + 4";
  EXPECT_EQ(pick_group(groups, {.placement = Placement::kLeastLoaded}), size_t{0});
  groups[2].num_in_flight = 7;
  EXPECT_EQ(pick_group(groups, prefix), size_t{1}) << "7 is past the slack: the next best match";
  groups[1].matched_tokens = 0;
  EXPECT_EQ(pick_group(groups, prefix), size_t{0}) << "no match within the slack: least loaded";
  // The slack grows with the load: half as many again.
  const std::vector<PlacementCandidate> busy{{.num_in_flight = 40, .free_blocks = 9, .matched_tokens = 0},
                                             {.num_in_flight = 60, .free_blocks = 9, .matched_tokens = 16}};
  EXPECT_EQ(pick_group(busy, prefix), size_t{1});
}

// A cached prefix is worth as many tokens of queued work as it saves.
TEST(Placement, PrefixAwareWeighsTheHitAgainstTheWorkQueuedThere) {
  const PlacementRule prefix{.placement = Placement::kPrefixAware, .balance_slack = 100};
  std::vector<PlacementCandidate> groups{{.num_in_flight = 0, .free_blocks = 50, .matched_tokens = 0, .pending_tokens = 0},
                                         {.num_in_flight = 3, .free_blocks = 50, .matched_tokens = 512, .pending_tokens = 2000}};
  EXPECT_EQ(pick_group(groups, prefix), size_t{0}) << "2000 tokens queued outweigh 512 saved";
  groups[1].pending_tokens = 300;
  EXPECT_EQ(pick_group(groups, prefix), size_t{1}) << "512 saved outweigh 300 queued";
  groups[1].pending_tokens = 512;
  EXPECT_EQ(pick_group(groups, prefix), size_t{0}) << "equal costs: the less loaded";
}

// One hot prefix on every request: the group that caches it takes requests until it runs
// slack more than the others, then they learn the prefix and the load stays even.
TEST(Placement, OneHotPrefixCannotOverloadOneGroup) {
  const PlacementRule prefix{.placement = Placement::kPrefixAware, .balance_slack = 3};
  std::vector<PlacementCandidate> groups(4, PlacementCandidate{.free_blocks = 64});
  groups[2].matched_tokens = 512;
  for (int i = 0; i < 400; ++i) {
    const size_t g = *pick_group(groups, prefix);
    ++groups[g].num_in_flight;
    groups[g].matched_tokens = 512;  // it has the prefix now
    int64_t lo = groups[0].num_in_flight, hi = lo;
    for (const auto& c : groups) {
      lo = std::min(lo, c.num_in_flight);
      hi = std::max(hi, c.num_in_flight);
    }
    ASSERT_LE(hi - lo, std::max<int64_t>(3, lo / 2) + 1) << "after " << i + 1 << " placements";
  }
}

TEST(Placement, NamesRoundTrip) {
  for (Placement p : {Placement::kPrefixAware, Placement::kLeastLoaded}) {
    const auto parsed = parse_placement(placement_name(p));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, p);
  }
  const auto bad = parse_placement("random");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("least-loaded"), std::string::npos);
}

TEST(PrefixIndex, MatchesLeadingBlocksAndForgetsLeastRecentlySentTailsFirst) {
  PrefixIndex index;
  index.set_capacity(6);
  const std::vector<BlockHash> a{1, 2, 3, 4};
  const std::vector<BlockHash> b{1, 2, 7, 8};
  index.insert(a);
  EXPECT_EQ(index.matched_blocks(a), 4);
  EXPECT_EQ(index.matched_blocks(b), 2);
  EXPECT_EQ(index.matched_blocks(std::vector<BlockHash>{9, 1, 2}), 0) << "a match is a prefix";
  index.insert(b);  // 6 distinct blocks: all fit
  EXPECT_EQ(index.size(), 6);
  EXPECT_EQ(index.matched_blocks(a), 4);
  index.insert(std::vector<BlockHash>{1, 10});  // one over: a's tail (4) goes first
  EXPECT_EQ(index.size(), 6);
  EXPECT_EQ(index.matched_blocks(a), 3);
  EXPECT_EQ(index.matched_blocks(b), 4);
  index.set_capacity(2);
  EXPECT_EQ(index.matched_blocks(std::vector<BlockHash>{1, 10}), 2) << "the most recent chain stays";
  EXPECT_EQ(index.size(), 2);
}

}  // namespace
}  // namespace strata::router
