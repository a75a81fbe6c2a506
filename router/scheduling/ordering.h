// Queue ordering for router scheduling (issue 7): in which order waiting requests are tried.
//
// Design note. Higher priority class first, always (a request field; strict, so a steady
// stream of high-priority work can hold lower classes back: that is what classes mean).
// Within a class, a request that has waited at least max_wait_s is "aged": aged requests go
// first, oldest first. The rest follow the policy:
//   Fcfs                    by arrival.
//   ShortestPredictedFirst  by predicted median output tokens, then arrival.
// Aging bounds waiting under SJF: once aged, a request is ahead of every younger one, and
// RouterScheduler stops back-filling past an aged request that does not fit (the capacity
// that frees up next is kept for it), so an adversarial stream of short requests cannot
// starve a long one for more than max_wait_s plus the time for room to open.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"

namespace strata::router {

struct Fcfs {};
struct ShortestPredictedFirst {};
using OrderPolicy = std::variant<Fcfs, ShortestPredictedFirst>;

// "fcfs" | "sjf"; InvalidArgument naming the choices otherwise.
StatusOr<OrderPolicy> parse_order_policy(std::string_view name);
const char* order_policy_name(const OrderPolicy& policy);

struct QueueEntry {
  int priority = 0;                // higher goes first
  double arrival_s = 0;            // on the scheduler's clock
  int64_t predicted_median_tokens = 0;
};

// True when `entry` has waited at least max_wait_s at `now_s`.
bool is_aged(const QueueEntry& entry, double now_s, double max_wait_s);

// Indices into `entries` in the order to try them.
std::vector<size_t> order_queue(const OrderPolicy& policy, std::span<const QueueEntry> entries,
                                double now_s, double max_wait_s);

}  // namespace strata::router
