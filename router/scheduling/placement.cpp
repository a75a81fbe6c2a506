#include "router/scheduling/placement.h"

#include <algorithm>

#include <fmt/format.h>

namespace strata::router {
namespace {

bool less_loaded(const PlacementCandidate& a, const PlacementCandidate& b) {
  return a.num_in_flight < b.num_in_flight ||
         (a.num_in_flight == b.num_in_flight && a.free_blocks > b.free_blocks);
}

}  // namespace

StatusOr<Placement> parse_placement(std::string_view name) {
  if (name == "prefix") return Placement::kPrefixAware;
  if (name == "least-loaded") return Placement::kLeastLoaded;
  return Status(StatusCode::kInvalidArgument,
                fmt::format("unknown placement '{}'; use prefix or least-loaded", name));
}

std::string_view placement_name(Placement placement) {
  return placement == Placement::kPrefixAware ? "prefix" : "least-loaded";
}

std::optional<size_t> pick_group(std::span<const PlacementCandidate> candidates, const PlacementRule& rule) {
  std::optional<size_t> least;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (!least || less_loaded(candidates[i], candidates[*least])) least = i;
  }
  if (!least || rule.placement == Placement::kLeastLoaded) return least;
  const int64_t min_in_flight = candidates[*least].num_in_flight;
  const int64_t limit = min_in_flight + std::max(rule.balance_slack, min_in_flight / 2);
  const auto cost = [](const PlacementCandidate& c) { return c.pending_tokens - c.matched_tokens; };
  std::optional<size_t> best = least;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const PlacementCandidate& c = candidates[i];
    if (c.num_in_flight > limit) continue;
    const PlacementCandidate& b = candidates[*best];
    if (cost(c) < cost(b) || (cost(c) == cost(b) && less_loaded(c, b))) best = i;
  }
  return best;
}

}  // namespace strata::router
