// WorkerServer: the serving loop of a worker group's driver (rank 0). It connects a DEALER
// socket (identity = group id) to the router's ROUTER socket, warms the engine up, says
// Hello{ready}, then loops: take every queued AddRequests/Abort, run one engine step, send
// one StepOutputs for the step (when it produced anything), and a Heartbeat every
// heartbeat_ms, busy or idle. It ends on a Shutdown message or when `stop` becomes true.
//
// Requests the engine refuses (prompt too long for the cache, bad sampling settings, a
// duplicate id) are answered at once with finish_reason "error" and the reason; nothing the
// router sends can crash the loop. Heartbeats go out from a thread of their own, so a long
// step (a big prefill on a CPU) does not make the router mark the group dead.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "common/wire.h"
#include "worker/engine/engine.h"
#include "worker/engine/step_log.h"
#include "worker/model/model_loader.h"

namespace strata {

struct WorkerServerConfig {
  std::string router_endpoint = wire::kDefaultRouterEndpoint;  // the router's ROUTER socket
  std::string group_id = "g0";  // unique per group; the DEALER identity
  std::string model_name;       // reported in Hello; "" ⇒ the model's own name
  int32_t heartbeat_ms = 200;   // also bounds how long `stop` goes unnoticed
  int32_t hello_interval_ms = 5000;  // Hello is repeated this often so a restarted router
                                     // learns about the group; [heartbeat_ms, 600000]
  std::string transport_key_file;  // the router's CURVE key file (common/transport_key.h); "" ⇒ none
  EngineConfig engine;
  std::string step_log;  // "" or a CSV file: one line per step (worker/engine/step_log.h)

  template <typename V>
  void visit_fields(V& v) {
    using config::Range;
    v("router", router_endpoint, "the router's ZeroMQ endpoint");
    v("group_id", group_id, "this worker group's unique name (1 to 255 bytes)");
    v("model_name", model_name, "model name reported to the router (default: the model's)");
    v("heartbeat_ms", heartbeat_ms, "how often the worker tells the router it is alive", Range{10, 60000});
    v("transport_key_file", transport_key_file, "the router's CURVE key file (strata keygen), if it has one");
    engine.visit_fields(v);
    v("step_log", step_log, "write one CSV line per engine step here (for `strata simulate --fit-steps`)");
  }
  Status validate() const;
};

class WorkerServer {
 public:
  // Serves until a Shutdown message arrives or `stop` is set (poll it from a signal
  // handler: it is checked at least every heartbeat_ms). Returns an error when the engine
  // cannot be created or the socket cannot be set up; `model` must outlive the call.
  // With a multi-rank `parallel`, this is the group's driver (world rank 0) and the other
  // ranks run run_engine_follower (worker/engine/engine.h). `draft` is the speculative
  // draft model (load_draft_model), when config.engine.speculative names one.
  Status run(const LoadedModel& model, const WorkerServerConfig& config,
             std::atomic<bool>& stop, ParallelContext* parallel = nullptr,
             const LoadedModel* draft = nullptr);

  // Engine steps run by the last run() (for tests and logs).
  uint64_t num_steps() const { return step_; }

 private:
  struct Loop;  // the socket and per-run state, defined in the .cpp
  Status serve(Loop& loop, std::atomic<bool>& stop);
  void handle(Loop& loop, wire::Message message, bool& shutdown);
  void run_step(Loop& loop);
  void leave(Loop& loop);
  wire::Hello hello(const LoadedModel& model, const ParallelContext* parallel) const;
  wire::KvStats kv_stats() const;

  const WorkerServerConfig* config_ = nullptr;
  std::unique_ptr<Engine> engine_;
  uint64_t step_ = 0;
  std::unique_ptr<StepLog> step_log_;
  bool had_work_ = false;  // the engine had unfinished work after the last step
};

}  // namespace strata
