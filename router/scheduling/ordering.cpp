#include "router/scheduling/ordering.h"

#include <algorithm>
#include <numeric>
#include <tuple>

namespace strata::router {

StatusOr<OrderPolicy> parse_order_policy(std::string_view name) {
  if (name == "fcfs") return OrderPolicy{Fcfs{}};
  if (name == "sjf") return OrderPolicy{ShortestPredictedFirst{}};
  return invalid_argument("`order` must be fcfs or sjf. Given: {}", name);
}

const char* order_policy_name(const OrderPolicy& policy) {
  return std::holds_alternative<Fcfs>(policy) ? "fcfs" : "sjf";
}

bool is_aged(const QueueEntry& entry, double now_s, double max_wait_s) {
  return now_s - entry.arrival_s >= max_wait_s;
}

std::vector<size_t> order_queue(const OrderPolicy& policy, std::span<const QueueEntry> entries,
                                double now_s, double max_wait_s) {
  std::vector<size_t> order(entries.size());
  std::iota(order.begin(), order.end(), size_t{0});
  const bool sjf = std::holds_alternative<ShortestPredictedFirst>(policy);
  // Sort key: (−priority, not aged, size (SJF and not aged only), arrival, index).
  const auto key = [&](size_t i) {
    const QueueEntry& e = entries[i];
    const bool aged = is_aged(e, now_s, max_wait_s);
    const int64_t size = sjf && !aged ? e.predicted_median_tokens : 0;
    return std::make_tuple(-e.priority, !aged, size, e.arrival_s, i);
  };
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key(a) < key(b); });
  return order;
}

}  // namespace strata::router
