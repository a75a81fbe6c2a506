// How the ranks of a worker group pass step plans (worker/engine/step_plan.h) and sampled tokens:
// the driver (world rank 0) broadcasts each plan as msgpack bytes, or the word to stop; the
// rank that samples sends the step's result back to the driver when it is another rank.
// The ranks of one group run the same binary, so a message that does not decode is a bug
// (an invariant failure), not input.
#pragma once

#include <optional>

#include "parallel/communicator.h"
#include "worker/engine/step_plan.h"

namespace strata {

void broadcast_plan(Communicator& world, const StepPlan& plan);
// Tells the other ranks to leave their loop (receive_plan returns nullopt).
void broadcast_stop(Communicator& world);
std::optional<StepPlan> receive_plan(Communicator& world);

void send_step_result(Communicator& world, const StepResult& result, int dest);
StepResult receive_step_result(Communicator& world, int src);

}  // namespace strata
