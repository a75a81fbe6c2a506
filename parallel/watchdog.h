// StepWatchdog: turns a hung rank into the whole worker group exiting. A rank marks the
// start and end of each step; if a step lasts longer than the timeout (a peer died inside
// a collective, a deadlock), the watchdog logs it and aborts the MPI job, so mpirun exits
// non-zero, the router stops hearing heartbeats and fails the group's requests.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace strata {

class StepWatchdog {
 public:
  explicit StepWatchdog(std::chrono::milliseconds timeout);
  ~StepWatchdog();
  StepWatchdog(const StepWatchdog&) = delete;
  StepWatchdog& operator=(const StepWatchdog&) = delete;

  void begin_step();
  void end_step();

 private:
  void watch();

  const std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool in_step_ = false;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point step_start_;
  std::thread thread_;
};

}  // namespace strata
