#include "parallel/watchdog.h"

#include <spdlog/spdlog.h>

#include "parallel/mpi_communicator.h"

namespace strata {

StepWatchdog::StepWatchdog(std::chrono::milliseconds timeout)
    : timeout_(timeout), thread_([this] { watch(); }) {}

StepWatchdog::~StepWatchdog() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void StepWatchdog::begin_step() {
  std::lock_guard lock(mu_);
  in_step_ = true;
  step_start_ = std::chrono::steady_clock::now();
}

void StepWatchdog::end_step() {
  std::lock_guard lock(mu_);
  in_step_ = false;
}

void StepWatchdog::watch() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, std::chrono::milliseconds(100));
    if (in_step_ && std::chrono::steady_clock::now() - step_start_ > timeout_) {
      spdlog::critical("rank {}: a step has run for over {} ms; a rank of the group died or hung. "
                       "Aborting the whole group.", mpi_world_rank(), timeout_.count());
      mpi_abort_group(3);
    }
  }
}

}  // namespace strata
