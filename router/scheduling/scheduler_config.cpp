#include "router/scheduling/scheduler_config.h"

namespace strata::router {

StatusOr<RouterSchedulerConfig> scheduler_config_from(const RouterConfig& config) {
  auto admission = parse_admission_policy(config.admission_policy);
  if (!admission.ok()) return admission.status();
  auto order = parse_order_policy(config.order);
  if (!order.ok()) return order.status();
  RouterSchedulerConfig out;
  out.admission = *admission;
  out.order = *order;
  out.quantile.initial = config.admission_quantile;
  out.kv_headroom_blocks = config.kv_headroom_blocks;
  out.max_queue_requests = config.max_queue_requests;
  out.max_queue_tokens = config.max_queue_tokens;
  out.max_wait_s = config.max_wait_s;
  out.request_timeout_s = config.request_timeout_s;
  out.queue_deadline_s = config.queue_deadline_s;
  return out;
}

}  // namespace strata::router
