// The simulator's worker-group cost model (issue 7): how long one engine step takes, from
// what the step holds. Linear, so it can be fitted from a profiling run of the real worker
// by least squares and read off a roofline for hardware we do not have:
//   step_s = a + b·prefill_tokens + c·decode_sequences + d·context_tokens
// where context_tokens = Σ over the step's sequences of the positions attended (cached +
// new). a is the fixed cost (reading every weight once, launches, sampling setup), b the
// compute per prefill token, c the per-decode-sequence cost, d the attention cost per cached
// position. On a GPU a roofline step is max(memory, compute), not a sum; the linear form
// over-estimates mixed steps near the ridge point, which the docs note where it matters.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "tools/bench/roofline.h"

namespace strata::sim {

struct StepShape {
  int64_t prefill_tokens = 0;
  int64_t decode_sequences = 0;
  int64_t context_tokens = 0;
};

struct CostModel {
  double a = 0, b = 0, c = 0, d = 0;  // seconds, seconds per unit
  std::string source;                 // how it was made: "fit of N steps, R² 0.97", "roofline ..."

  double step_seconds(const StepShape& s) const {
    return a + b * static_cast<double>(s.prefill_tokens) + c * static_cast<double>(s.decode_sequences) +
           d * static_cast<double>(s.context_tokens);
  }
};

// {"a": ..., "b": ..., "c": ..., "d": ..., "source": "..."}; errors name the file and key.
Status save_cost_model(const CostModel& model, const std::string& path);
StatusOr<CostModel> load_cost_model(const std::string& path);

struct StepSample {
  StepShape shape;
  double seconds = 0;
};

struct CostModelFit {
  CostModel model;
  double r_squared = 0;
  double mean_abs_relative_error = 0;  // mean |predicted − measured| / measured, over kept steps
  size_t outliers = 0;                 // stalled steps left out (see fit_cost_model)
};

// Least squares over `samples` with every coefficient >= 0 (a coefficient that would come
// out negative is fixed at 0 and the rest refitted: a step never gets cheaper with more
// work), robust to stalled steps (left out beyond 5 robust standard deviations). InvalidArgument with fewer than 8 samples or when the shapes cannot separate the
// terms (say, no step had prefill tokens): then the message names the missing kind of step.
// `drop_stalls` false keeps every step: fitting a serving worker's own log, whose stalls
// (other processes on the same cores) are part of what requests saw.
StatusOr<CostModelFit> fit_cost_model(const std::vector<StepSample>& samples, bool drop_stalls = true);

// Reads the CSV a worker writes with --step-log (or --profile-steps-csv); errors name the
// file and line.
StatusOr<std::vector<StepSample>> load_step_csv(const std::string& path);

// The roofline of one worker group (tp GPUs of `hw` sharing the model): a = weights read once
// at the memory bandwidth, b = linear FLOPs per token at peak, c = 0, d = one cached
// position's K and V read at the bandwidth plus its attention FLOPs at peak. `efficiency`
// (0, 1] scales bandwidth and peak alike (1: the roofline itself).
CostModel roofline_cost_model(const bench::ModelCosts& costs, const bench::HardwareSpec& hw,
                              bench::RooflineDtype compute_dtype, int tp, double efficiency);

}  // namespace strata::sim
