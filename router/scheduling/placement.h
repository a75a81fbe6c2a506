// Placement across data-parallel worker groups for router scheduling: which of the groups
// that admit a request gets it.
//
// Design note. One rule, for every admission policy: the group with the fewest requests in
// flight, ties broken by the most free KV blocks, then by the first candidate (group-id
// order). It is the rule the router has always used by default, and the one measured. The
// in-flight count is the scheduler's own record (what it dispatched and has not seen
// finish), so the placements of one schedule() pass see each other and a burst spreads
// evenly even though the workers' KV reports lag. Power-of-two choices was dropped: its
// random probes guard against several routers, or stale counts, piling onto one "least
// loaded" group; a strata fleet has one router and it counts its own dispatches exactly.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

namespace strata::router {

struct PlacementCandidate {
  int64_t num_in_flight = 0;  // requests the router has placed there, not yet finished
  int64_t free_blocks = 0;    // the group's last KV report
};

// The index of the chosen candidate, or nullopt when there is none.
std::optional<size_t> pick_group(std::span<const PlacementCandidate> candidates);

}  // namespace strata::router
