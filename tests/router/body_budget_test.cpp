// BodyBudget: reservations add up to at most the capacity, a waiter gets room the moment
// another reservation is released (moved-from ones release nothing), and one that cannot
// get room within its wait is refused.
#include "router/body_budget.h"

#include <chrono>
#include <future>
#include <thread>

#include <gtest/gtest.h>

namespace strata::router {
namespace {

using std::chrono::milliseconds;

TEST(BodyBudget, ReservationsAddUpToTheCapacityAndNoMore) {
  BodyBudget budget(100);
  auto a = budget.reserve(60, milliseconds(0));
  ASSERT_TRUE(a);
  auto b = budget.reserve(40, milliseconds(0));
  ASSERT_TRUE(b);
  EXPECT_EQ(budget.in_use(), 100);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(budget.reserve(1, milliseconds(50)));
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(50));
  a->release();
  a->release();  // once only
  EXPECT_EQ(budget.in_use(), 40);
  EXPECT_TRUE(budget.reserve(60, milliseconds(0)));  // released again at once (a temporary)
  EXPECT_EQ(budget.in_use(), 40);
}

TEST(BodyBudget, MoreThanTheCapacityIsReadAloneNotRefused) {
  BodyBudget budget(100);
  auto big = budget.reserve(1000, milliseconds(0));
  ASSERT_TRUE(big);
  EXPECT_EQ(big->bytes(), 100);
  EXPECT_FALSE(budget.reserve(1, milliseconds(0)));
}

TEST(BodyBudget, AWaiterGetsRoomWhenAnotherIsReleased) {
  BodyBudget budget(100);
  auto held = budget.reserve(80, milliseconds(0));
  ASSERT_TRUE(held);
  auto waiter = std::async(std::launch::async, [&] { return budget.reserve(50, milliseconds(5000)).has_value(); });
  EXPECT_EQ(waiter.wait_for(milliseconds(100)), std::future_status::timeout);  // still waiting
  { BodyBudget::Reservation moved = std::move(*held); }  // the moved-to one releases, on scope exit
  EXPECT_EQ(waiter.wait_for(milliseconds(2000)), std::future_status::ready);
  EXPECT_TRUE(waiter.get());
  held.reset();  // the moved-from one gives back nothing
  EXPECT_EQ(budget.in_use(), 0);
}

}  // namespace
}  // namespace strata::router
