#include "router/scheduling/placement.h"

namespace strata::router {

std::optional<size_t> pick_group(std::span<const PlacementCandidate> candidates) {
  std::optional<size_t> best;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const PlacementCandidate& c = candidates[i];
    if (!best) {
      best = i;
      continue;
    }
    const PlacementCandidate& b = candidates[*best];
    if (c.num_in_flight < b.num_in_flight ||
        (c.num_in_flight == b.num_in_flight && c.free_blocks > b.free_blocks)) {
      best = i;
    }
  }
  return best;
}

}  // namespace strata::router
