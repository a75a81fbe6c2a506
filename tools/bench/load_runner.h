// Runs one load point: a list of requests, each with a planned send time, on a fixed pool
// of client threads (one connection each). The three load modes differ only in the plan:
//   closed loop  — every send time 0, pool size = concurrency: a new request goes out as
//                  soon as one finishes;
//   open loop    — Poisson send times at a rate, pool size = --max-concurrency;
//   trace replay — the trace's arrival times divided by a time scale.
// A request whose send time passed while every client was busy goes out late; its send
// time in the result is when it really went.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "tools/bench/sse_client.h"

namespace strata::bench {

struct PlannedRequest {
  double send_s = 0;  // since the start of the load point
  RequestSpec spec;
};

struct LoadPointResult {
  std::string label;           // "concurrency 4", "rate 2 req/s", ...
  double load = 0;             // the x value of plots: concurrency, rate, or time scale
  double duration_s = 0;       // first send to last completion
  std::vector<RequestResult> requests;
};

// Poisson arrivals: `n` send times at `rate_per_s` (exponential gaps; rate <= 0 or inf: all 0).
std::vector<double> poisson_send_times(int n, double rate_per_s, uint64_t seed);

// Runs `plan` (sorted by send time) with `num_clients` threads. `progress` (may be empty) is
// called after each completion with (done, failed, total).
LoadPointResult run_load_point(const Endpoint& endpoint, const ClientOptions& options,
                               std::vector<PlannedRequest> plan, int num_clients,
                               const std::function<void(int, int, int)>& progress);

// Draws a one-line progress bar on stderr (when it is a terminal, else one line per 10%).
class ProgressBar {
 public:
  explicit ProgressBar(std::string label);
  void update(int done, int failed, int total);
  void finish();

 private:
  std::string label_;
  bool tty_ = false;
  int last_decile_ = -1;
  double start_s_ = 0;
};

}  // namespace strata::bench
