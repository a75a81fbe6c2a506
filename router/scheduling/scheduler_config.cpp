#include "router/scheduling/scheduler_config.h"

namespace strata::router {

StatusOr<RouterSchedulerConfig> scheduler_config_from(const RouterConfig& config) {
  auto admission = parse_admission_policy(config.admission_policy);
  if (!admission.ok()) return admission.status();
  auto order = parse_order_policy(config.order);
  if (!order.ok()) return order.status();
  RouterSchedulerConfig out = config.scheduling;
  out.admission = *admission;
  out.order = *order;
  return out;
}

}  // namespace strata::router
