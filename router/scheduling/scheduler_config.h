// scheduler_config_from: the RouterScheduler settings named by a RouterConfig (the policy
// names parsed, the numbers carried over). The one place where the CLI/YAML spelling of the
// scheduling settings meets their types.
#pragma once

#include "common/status.h"
#include "router/router_config.h"
#include "router/scheduling/router_scheduler.h"

namespace strata::router {

// InvalidArgument naming the field, the choices and the value for an unknown policy name.
StatusOr<RouterSchedulerConfig> scheduler_config_from(const RouterConfig& config);

}  // namespace strata::router
