#include "router/scheduling/placement.h"

namespace strata::router {

std::optional<size_t> PowerOfTwoChoices::pick(std::span<const double> outstanding_tokens) {
  const size_t n = outstanding_tokens.size();
  if (n == 0) return std::nullopt;
  if (n == 1) return size_t{0};
  const size_t a = std::uniform_int_distribution<size_t>(0, n - 1)(rng_);
  size_t b = std::uniform_int_distribution<size_t>(0, n - 2)(rng_);
  if (b >= a) ++b;  // distinct from a
  return outstanding_tokens[b] < outstanding_tokens[a] ? b : a;
}

}  // namespace strata::router
