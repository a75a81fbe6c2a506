#include "router/scheduling/scheduler_config.h"

namespace strata::router {

StatusOr<RouterSchedulerConfig> scheduler_config_from(const RouterConfig& config) {
  auto admission = parse_admission_policy(config.admission_policy);
  if (!admission.ok()) return admission.status();
  auto order = parse_order_policy(config.order);
  if (!order.ok()) return order.status();
  auto placement = parse_placement(config.placement);
  if (!placement.ok()) return placement.status();
  RouterSchedulerConfig out = config.scheduling;
  out.admission = *admission;
  out.order = *order;
  out.placement.placement = *placement;
  return out;
}

}  // namespace strata::router
