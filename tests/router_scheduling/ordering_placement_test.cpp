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

TEST(Placement, PicksTheLessLoadedOfTwo) {
  PowerOfTwoChoices p(7);
  const std::vector<double> two{100, 3};
  for (int i = 0; i < 50; ++i) EXPECT_EQ(p.pick(two), size_t{1});
  const std::vector<double> one{42};
  EXPECT_EQ(p.pick(one), size_t{0});
  EXPECT_FALSE(p.pick({}).has_value());
}

TEST(Placement, NeverPicksTheMostLoadedAndSpreadsOverTheRest) {
  PowerOfTwoChoices p(11);
  const std::vector<double> loads{5, 1, 9, 5};
  std::vector<int> count(loads.size(), 0);
  for (int i = 0; i < 3000; ++i) ++count[*p.pick(loads)];
  EXPECT_EQ(count[2], 0);  // always compared with a lighter one
  EXPECT_GT(count[1], count[0]);
  EXPECT_GT(count[0], 0);
  EXPECT_GT(count[3], 0);
}

TEST(Placement, SameSeedSameChoices) {
  PowerOfTwoChoices a(3), b(3);
  const std::vector<double> loads{4, 4, 4, 4, 4};
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.pick(loads), b.pick(loads));
}

}  // namespace
}  // namespace strata::router
