#include "worker/engine/step_log.h"

#include <memory>

namespace strata {

StatusOr<std::unique_ptr<StepLog>> StepLog::open(const std::string& path) {
  std::ofstream out(path);
  if (!out) return not_found("--step-log {}: cannot write it", path);
  out << "prefill_tokens,decode_sequences,context_tokens,seconds\n";
  return std::unique_ptr<StepLog>(new StepLog(std::move(out)));
}

void StepLog::record(const EngineStepStats& step, bool had_work_before) {
  const auto now = std::chrono::steady_clock::now();
  const double since_last = std::chrono::duration<double>(now - last_end_).count();
  last_end_ = now;
  if (step.num_sequences == 0) return;
  const double seconds = had_work_before ? since_last : step.seconds;
  out_ << step.num_prefill_tokens << ',' << step.num_decode_tokens << ',' << step.context_tokens << ','
       << seconds << '\n';
  out_.flush();
}

}  // namespace strata
