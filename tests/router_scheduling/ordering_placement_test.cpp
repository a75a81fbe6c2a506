#include <gtest/gtest.h>

#include "router/scheduling/ordering.h"
#include "router/scheduling/placement.h"

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

}  // namespace
}  // namespace strata::router
