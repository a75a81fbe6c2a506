#include "router/scheduling/admission.h"

#include <gtest/gtest.h>

namespace strata::router {
namespace {

// Block size 1 so that blocks == tokens and the arithmetic can be checked by hand.
//   A: holds 20 tokens, predicted 30 more (at most 80)
//   B: holds 10 tokens, predicted 10 more (at most 80)
//   N (newcomer): prompt 10, predicted 20 (at most 80)
GroupKv group_of_two(int64_t total_blocks, int64_t free_blocks) {
  return GroupKv{.total_blocks = total_blocks, .free_blocks = free_blocks, .block_size = 1,
                 .running = {{.used_tokens = 20, .max_left_tokens = 80, .predicted_left_tokens = 30},
                             {.used_tokens = 10, .max_left_tokens = 80, .predicted_left_tokens = 10}}};
}
const KvRequest kNewcomer{.used_tokens = 10, .max_left_tokens = 80, .predicted_left_tokens = 20};

TEST(PredictedPeak, IsTheMaxOverFinishTimesOfTheLiveTokens) {
  // Sorted by left: A (left 30, used 20), N (20, 10), B (10, 10).
  //   i=1: 1·30 + 20            = 50
  //   i=2: 2·20 + (20+10)       = 70
  //   i=3: 3·10 + (20+10+10)    = 70
  GroupKv g = group_of_two(100, 70);
  g.running.push_back(kNewcomer);
  EXPECT_EQ(predicted_peak_blocks(g.running, 1), 70);
  EXPECT_EQ(predicted_peak_blocks({}, 1), 0);
}

TEST(PredictedPeak, RoundsEachRequestUpToWholeBlocks) {
  // Block size 4. A: used 5, left 3; B: used 1, left 1.
  //   at t=3 only A: ceil(8/4) = 2 blocks; bound floor((8 + 1·3)/4) = 2
  //   at t=1 both:   ceil(6/4) + ceil(2/4) = 3; bound floor((2·1 + 6 + 2·3)/4) = 3
  const std::vector<KvRequest> rs{{.used_tokens = 5, .max_left_tokens = 9, .predicted_left_tokens = 3},
                                  {.used_tokens = 1, .max_left_tokens = 9, .predicted_left_tokens = 1}};
  EXPECT_EQ(predicted_peak_blocks(rs, 4), 3);
}

TEST(Admission, PredictedAdmitsExactlyWhatFits) {
  EXPECT_TRUE(admits(Predicted{}, group_of_two(70, 40), kNewcomer, 0));   // peak 70 ≤ 70
  EXPECT_FALSE(admits(Predicted{}, group_of_two(69, 39), kNewcomer, 0));  // 70 > 69
  EXPECT_TRUE(admits(Predicted{}, group_of_two(72, 42), kNewcomer, 2));   // 70 ≤ 72 − 2
  EXPECT_FALSE(admits(Predicted{}, group_of_two(72, 42), kNewcomer, 3));  // 70 > 72 − 3
}

TEST(Admission, ReserveMaxRejectsWhatPredictedAdmits) {
  // Reserved: A 20+80, B 10+80, N 10+80 = 280 blocks; the predicted peak is 70.
  EXPECT_FALSE(admits(ReserveMax{}, group_of_two(100, 70), kNewcomer, 0));
  EXPECT_TRUE(admits(Predicted{}, group_of_two(100, 70), kNewcomer, 0));
  EXPECT_FALSE(admits(ReserveMax{}, group_of_two(279, 249), kNewcomer, 0));
  EXPECT_TRUE(admits(ReserveMax{}, group_of_two(280, 250), kNewcomer, 0));
}

TEST(Admission, OnDemandOverAdmits) {
  // 50 blocks, 30 held: the prompt's 10 blocks are free, so on-demand admits; but the three
  // will need 70 blocks at their predicted peak, so one of them will be preempted.
  EXPECT_TRUE(admits(OnDemand{}, group_of_two(50, 20), kNewcomer, 0));
  EXPECT_FALSE(admits(Predicted{}, group_of_two(50, 20), kNewcomer, 0));
  // Free blocks are the lower of the report and the router's own count.
  EXPECT_FALSE(admits(OnDemand{}, group_of_two(50, 9), kNewcomer, 0));
  EXPECT_FALSE(admits(OnDemand{}, group_of_two(39, 39), kNewcomer, 0));
  EXPECT_FALSE(admits(OnDemand{}, group_of_two(50, 20), kNewcomer, 11));
}

TEST(Admission, PolicyNamesRoundTrip) {
  for (const char* name : {"on-demand", "reserve-max", "predicted"}) {
    const auto p = parse_admission_policy(name);
    ASSERT_TRUE(p.ok());
    EXPECT_STREQ(admission_policy_name(*p), name);
  }
  const auto bad = parse_admission_policy("greedy");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("Given: greedy"), std::string::npos);
}

TEST(AdaptiveQuantile, SettlesWherePreemptionsMeetTheTarget) {
  // A fake system whose preemption probability falls with q: p(q) = 0.1·(1 − q); the target
  // 1% is met at q = 0.9. Preemptions are drawn deterministically by accumulating p.
  AdaptiveQuantile aq({.initial = 0.6, .min = 0.5, .max = 0.999, .target_preemption_rate = 0.01,
                       .step = 0.01});
  double owed = 0;
  double sum_q = 0;
  const int n = 40000;
  for (int i = 0; i < n; ++i) {
    owed += 0.1 * (1 - aq.value());
    const int preempted = owed >= 1 ? 1 : 0;
    owed -= preempted;
    aq.update(1, preempted);
    if (i >= n / 2) sum_q += aq.value();
  }
  EXPECT_NEAR(sum_q / (n / 2), 0.9, 0.02);
}

TEST(AdaptiveQuantile, StaysInItsBounds) {
  AdaptiveQuantile aq({.initial = 0.9, .min = 0.5, .max = 0.99});
  aq.update(0, 1000);
  EXPECT_DOUBLE_EQ(aq.value(), 0.99);
  aq.update(1000000, 0);
  EXPECT_DOUBLE_EQ(aq.value(), 0.5);
}

}  // namespace
}  // namespace strata::router
