// SchedulingLoop: the RouterScheduler (router/scheduling/) in the request path. Every request
// the router serves goes through it; requests wait here, not in the workers, until the
// scheduler's admission policy lets a group take them.
//
// Design note. The scheduler is pure logic; this is its plumbing. One mutex guards the
// scheduler and the table of requests it holds. enqueue() runs a scheduling pass at once, on
// the submitting thread, so a request that fits goes out without waiting for the loop (no
// added latency under on-demand admission). A thread runs the same pass every tick_ms, and
// at once when a request finishes, for what is still waiting (room opens as reports arrive)
// and for timeouts. Each pass snapshots the dispatcher's groups, calls schedule(), and hands
// each decision to Dispatcher::submit_to() with the request's stored WireRequest and
// callback. The callback it installs also feeds the scheduler (on_tokens, on_finished)
// before passing each output on. A request timed out while waiting finishes with "abort", as
// if its client had gone away; one timed out while running is aborted in its worker; one the
// scheduler refuses (it can never fit) finishes with "error" and the scheduler's message.
// A finished request keeps its place in the queue bound until release(): the server calls
// it when the client has the answer.
//
// Locks: the loop's mutex is taken before the dispatcher's, never after (the dispatcher runs
// callbacks outside its own lock). Callbacks of requests that never reached a worker run on
// the thread that ended them (an HTTP thread, the loop thread, or stop()'s), outside the lock.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <string>
#include <mutex>
#include <span>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/status.h"
#include "common/wire.h"
#include "router/dispatcher.h"
#include "router/scheduling/length_predictor.h"
#include "router/scheduling/router_scheduler.h"

namespace strata::router {

struct SchedulingLoopOptions {
  int tick_ms = 5;  // > 0: the longest the loop sleeps
  // The length predictor's state: loaded by start() when the file exists, written every
  // snapshot_period_s and by stop(). "" keeps it in memory only.
  std::string predictor_snapshot;
  double snapshot_period_s = 60;
  // Called (under the loop's lock; keep it short) when a finished request taught the
  // predictor, with the median predicted for it and its actual length; and with the
  // admission quantile after each scheduling pass.
  std::function<void(int64_t predicted_median, int64_t actual)> on_prediction;
  std::function<void(double quantile)> on_quantile;
};

class SchedulingLoop {
 public:
  // `dispatcher` must outlive the loop.
  SchedulingLoop(RouterSchedulerConfig config, Dispatcher& dispatcher,
                 SchedulingLoopOptions options = {});
  ~SchedulingLoop();  // stop()
  SchedulingLoop(const SchedulingLoop&) = delete;
  SchedulingLoop& operator=(const SchedulingLoop&) = delete;

  // Starts the thread; fails only when the predictor snapshot exists but cannot be read.
  Status start();
  // Stops the thread; every request still waiting finishes with "abort", or with "error"
  // and `error` when one is given (a drain that ran out of time). Idempotent.
  void stop(std::string error = "");

  // One engine request: what goes to the worker, what the scheduler weighs (features,
  // priority, timeout; its id is request.id) and where its outputs go.
  struct Submission {
    wire::WireRequest request;
    SchedulerRequest scheduling;
    OutputCallback on_output;
  };
  // Queues the choices of one client request, all or none, and dispatches what fits now.
  // ResourceExhausted (429) when the scheduler's queue bound refuses them; Unavailable after
  // stop().
  Status enqueue(std::vector<Submission> choices);
  // The client went away (or the router's deadline passed): a waiting request finishes with
  // "abort" at once; a dispatched one is aborted in its worker. Unknown ids are ignored.
  void abort(uint64_t id);
  // The client has its answer (or went away): the request stops counting toward the queue
  // bound. Every enqueued id must be released once; before or after it finishes.
  void release(uint64_t id);
  // What the queue bound counts: requests waiting, running, or finished and not yet
  // released (the router's queue length).
  size_t num_unfinished() const;

 private:
  struct Held {
    wire::WireRequest request;  // moved out when dispatched
    OutputCallback on_output;   // moved into the dispatcher's callback when dispatched
    bool dispatched = false;
    int64_t num_output_tokens = 0;  // received so far
  };
  void run();
  using Ended = std::vector<std::pair<OutputCallback, wire::TokenOutput>>;
  std::vector<GroupSnapshot> snapshot_groups() const;
  // Requires mu_. One schedule() pass over `groups`; requests it ends go to `ended`, whose
  // callbacks the caller runs after releasing mu_.
  void schedule_locked(std::span<const GroupSnapshot> groups, Ended& ended);
  // Requires mu_. Sends one placed request to its group; on refusal it ends in `ended`.
  void dispatch_locked(const Dispatch& decision, Ended& ended);
  // Requires mu_. Ends a request that has not reached a worker with `output`.
  void end_held_locked(uint64_t id, wire::TokenOutput output, Ended& ended);
  // Called on the dispatcher's IO thread for every output of a dispatched request, before
  // the output goes on to the request's own callback.
  void note_output(uint64_t id, const wire::TokenOutput& output);
  double now_s() const;
  void save_snapshot();  // requires mu_

  Dispatcher& dispatcher_;
  const SchedulingLoopOptions options_;
  double last_snapshot_s_ = 0;
  const std::chrono::steady_clock::time_point epoch_ = std::chrono::steady_clock::now();
  HistogramPredictor predictor_;  // before scheduler_: it holds a reference

  mutable std::mutex mu_;
  std::condition_variable wake_;
  RouterScheduler scheduler_;                   // guarded by mu_
  std::unordered_map<uint64_t, Held> held_;     // guarded by mu_; waiting and dispatched
  bool running_ = false;                        // guarded by mu_
  bool stopping_ = false;                       // guarded by mu_
  bool wake_pending_ = false;                   // guarded by mu_
  std::thread thread_;
};

}  // namespace strata::router
