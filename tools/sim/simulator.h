// A discrete-event simulator of strata serving a trace (issue 7): the router's scheduling
// policy code (router/scheduling/) and each worker group's iteration scheduler
// (worker/engine/scheduler.h) run unchanged on a simulated clock; only the forward pass is replaced
// by the cost model's step time. So the simulation makes the same admission, ordering,
// placement, batching and preemption decisions the real system would, and is as accurate as
// the cost model (validated against real runs in docs/benchmarks.md).
//
// Event loop: the next event is the earliest of the next arrival and the end of a group's
// running step. At an arrival the request goes to the router's scheduler, whatever the
// policy (on-demand + fcfs included, as in `strata serve`), which admits and places it. At
// a step end the group's scheduler applies one token per sampled
// sequence (answers are forced to the trace's length with stop_after_tokens, max_tokens is
// the cap), the router hears of tokens and finishes, schedules again, and every idle group
// with work starts its next step.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "router/scheduling/router_scheduler.h"
#include "tools/sim/cost_model.h"
#include "worker/engine/scheduler.h"

namespace strata::sim {

struct SimRequest {
  double arrival_s = 0;
  int32_t prompt_tokens = 1;
  int32_t output_tokens = 1;  // the answer's length, unknown to the router
  int32_t max_tokens = 1;     // what the request asks for (>= output_tokens for a full answer)
  // The prompt's tokens when they matter (a trace with prefix identity, for the prefix
  // cache); empty: prompt_tokens tokens that no other request shares.
  std::vector<int32_t> prompt_ids;
};

struct SimPolicy {
  std::string name;  // "on-demand", "reserve-max+sjf", ...
  router::RouterSchedulerConfig router;
};

// "ADMISSION[+ORDER]" (on-demand, reserve-max, predicted; fcfs, sjf; on-demand+fcfs is
// `strata serve`'s default). `base` gives the rest.
StatusOr<SimPolicy> parse_sim_policy(const std::string& name, const router::RouterSchedulerConfig& base);

struct SimConfig {
  int num_groups = 1;
  int64_t blocks_per_group = 0;
  SchedulerConfig worker;  // budgets, block size, watermark, max_model_len (stop ids unused)
  CostModel cost;
};

struct SimRequestResult {
  bool ok = false;        // finished with its answer (not rejected, not failed)
  std::string failure;    // "429" (router queue full), "rejected: ..." (worker refused)
  double ttft_s = 0;      // arrival to first token
  double e2e_s = 0;       // arrival to last token
  int32_t output_tokens = 0;
};

struct SimResult {
  std::vector<SimRequestResult> requests;  // in the order given
  double duration_s = 0;                   // first arrival to last finish
  int64_t preemptions = 0;                 // summed over groups
  double kv_utilization_mean = 0;          // time-average of used / total blocks over the run
  double kv_utilization_max = 0;
  int64_t steps = 0;
  double busy_fraction = 0;                // group-time spent in steps
  int64_t prefix_cache_queries = 0;        // prompt tokens looked up, summed over groups
  int64_t prefix_cache_hits = 0;           // of them, found cached
};

// `requests` sorted by arrival.
StatusOr<SimResult> simulate(const SimConfig& config, const SimPolicy& policy,
                             const std::vector<SimRequest>& requests);

}  // namespace strata::sim
