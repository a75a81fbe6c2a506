// Placement across data-parallel worker groups for router scheduling: which of the groups
// that admit a request gets it.
//
// Design note. Least loaded: the group with the fewest requests in flight, ties broken by
// the most free KV blocks, then by the first candidate (group-id order). The in-flight count
// is the scheduler's own record (what it dispatched and has not seen finish), so the
// placements of one schedule() pass see each other and a burst spreads evenly even though
// the workers' KV reports lag. Power-of-two choices was dropped: its random probes guard
// against several routers, or stale counts, piling onto one "least loaded" group; a strata
// fleet has one router and it counts its own dispatches exactly.
//
// Prefix aware (the default, after SGLang's cache-aware routing and llm-d's prefix scorer):
// the hit length is weighed against the load. Each group's load is the work the router
// predicts it still has, in tokens: the prompts it has not started (less what they were
// expected to find cached) and the predicted rest of every answer. The group whose load less
// the prompt tokens its prefix index (prefix_index.h) says it caches is smallest wins, least
// loaded first among equals: a cached prefix is worth as many tokens of queue as it saves.
// Among the groups no busier than the least loaded one plus its balance slack
// (placement_balance_slack) in requests: that bounds what one hot prefix can do, since
// once its group runs that many more requests than the least loaded, the next copy goes
// elsewhere and that group learns the prefix too.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "common/status.h"

namespace strata::router {

enum class Placement { kPrefixAware, kLeastLoaded };
// "prefix" | "least-loaded"; InvalidArgument naming the choices otherwise.
StatusOr<Placement> parse_placement(std::string_view name);
std::string_view placement_name(Placement placement);

struct PlacementCandidate {
  int64_t num_in_flight = 0;   // requests the router has placed there, not yet finished
  int64_t free_blocks = 0;     // the group's last KV report
  int64_t matched_tokens = 0;  // prompt tokens its prefix index says it caches
  int64_t pending_tokens = 0;  // prefill not started + predicted decode left, router's view
};

struct PlacementRule {
  Placement placement = Placement::kPrefixAware;
  // With prefix-aware placement, a group may run this many requests more than the least
  // loaded one, or half as many again if that is more, and still win on its prefix match.
  int64_t balance_slack = 4;
};

// The index of the chosen candidate, or nullopt when there is none.
std::optional<size_t> pick_group(std::span<const PlacementCandidate> candidates, const PlacementRule& rule = {});

}  // namespace strata::router
