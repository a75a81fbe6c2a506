// Profiling the real worker for the simulator's cost model: the Engine (the worker's own
// forward pass, sampling and scheduling) runs closed-loop workloads at several concurrency
// levels, and every step's shape and wall time is recorded for fit_cost_model().
#pragma once

#include <vector>

#include "tools/sim/cost_model.h"
#include "tools/sim/simulator.h"
#include "worker/engine/engine.h"

namespace strata::sim {

struct ProfileOptions {
  std::vector<int> concurrency = {1, 4, 16, 64};  // requests kept in flight, one level at a time
  int requests_per_level = 24;                     // at least; a level runs 2 × its concurrency
  int warmup_steps = 4;                            // dropped at the start of each level
};

// Takes request lengths from `workload` in turn (arrival times are ignored).
StatusOr<std::vector<StepSample>> profile_engine(Engine& engine, const std::vector<SimRequest>& workload,
                                                 const ProfileOptions& options);

}  // namespace strata::sim
