// Placement across data-parallel worker groups for router scheduling (issue 7).
//
// Design note. Power of two choices: among the groups that admit a request, draw two at
// random and take the one with fewer predicted outstanding tokens (prefill left + predicted
// decode left of what the router has sent there). Two random probes instead of the global
// minimum keep many routers, or one router acting on slightly stale reports, from all piling
// onto the same "least loaded" group, at almost the balance of the full search. The RNG is
// seeded so tests and the simulator are reproducible.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <span>

namespace strata::router {

class PowerOfTwoChoices {
 public:
  explicit PowerOfTwoChoices(uint64_t seed = 1) : rng_(seed) {}
  // `outstanding_tokens[k]` is candidate k's load. Returns the chosen candidate's index, or
  // nullopt when there is none. One candidate: it; two or more: the lighter of two distinct
  // random ones (ties: the first drawn).
  std::optional<size_t> pick(std::span<const double> outstanding_tokens);

 private:
  std::mt19937_64 rng_;
};

}  // namespace strata::router
