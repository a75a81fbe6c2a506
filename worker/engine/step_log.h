// StepLog: one CSV line per engine step of a serving worker (prefill tokens, decode
// sequences, context tokens, seconds), the profile `strata simulate --fit-steps` fits its
// cost model to. The seconds of a step that directly follows another (the worker was busy)
// run from the end of that one, so the worker loop's own overhead between steps (receiving
// requests, sending outputs) is in the figure, as it is in the time a request waits.
#pragma once

#include <chrono>
#include <fstream>
#include <string>

#include "common/status.h"
#include "worker/engine/engine.h"

namespace strata {

class StepLog {
 public:
  static StatusOr<std::unique_ptr<StepLog>> open(const std::string& path);

  // After each step; `had_work_before`: the engine had unfinished work when the previous
  // step ended (so this one followed it back to back).
  void record(const EngineStepStats& step, bool had_work_before);

 private:
  explicit StepLog(std::ofstream out) : out_(std::move(out)) {}
  std::ofstream out_;
  std::chrono::steady_clock::time_point last_end_{};
};

}  // namespace strata
