// Dispatcher: the router's end of the router ↔ worker transport. It binds one ZeroMQ ROUTER
// socket; worker groups connect to it with DEALER sockets whose identity is their group id,
// register with Hello and then stream StepOutputs and Heartbeats (common/wire.h).
//
// Threads: one IO thread owns the socket (ZeroMQ sockets are not thread-safe). submit_to(),
// abort() and the readers may be called from any thread: they take a mutex, queue the
// command and wake the IO thread through an inproc PAIR socket. Everything submitted since
// the IO thread's last pass goes to a group as one AddRequests message.
//
// Transport only: a request goes to the group submit_to() names. Whether and where to send it
// is decided by the router's scheduler (router/scheduling/, through router/scheduling_loop.h);
// the dispatcher keeps what it needs for that choice (GroupInfo: liveness, KV reports, the
// count in flight) and never places a request itself.
//
// Failure: a group whose connection closes (its process exited or was killed: seen through
// the socket monitor, router/disconnect_watch.h) is marked dead at once, one silent for
// heartbeat_timeout_ms too; every request it held finishes with finish_reason "error" and a
// message naming the group and saying to retry. A group that comes back (or restarts, seen
// as a new Hello::instance_id) serves new requests again. A second connection with a live
// group's id is not taken (no ROUTER handover), a Hello naming another group than its
// connection's is refused, and so is a model smaller than the router's tokenizer
// (router/hello_check.h): those are told why with a Shutdown. With a transport key, only
// workers holding it get past the handshake (router/worker_auth.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/config_fields.h"
#include "common/status.h"
#include "common/wire.h"

namespace strata::router {

struct DispatcherConfig {
  // Where the ROUTER socket binds. "tcp://127.0.0.1:*" binds a free port; see endpoint().
  std::string endpoint = wire::kDefaultRouterEndpoint;
  // Workers send heartbeats from a thread of their own, so a long engine step does not
  // make a group look dead; the timeout covers a stalled or vanished worker.
  int heartbeat_timeout_ms = 5000;
  // A CURVE key file (common/transport_key.h, `strata keygen`): only workers holding the same
  // file can connect. "" ⇒ none, allowed on loopback and ipc endpoints only.
  std::string transport_key_file;
  // The router tokenizer's vocabulary size: a group whose model has fewer tokens is refused
  // and told to shut down (its model would reject the tokenizer's ids). 0: not checked.
  int64_t tokenizer_vocab_size = 0;
  // Called on the IO thread for every engine step a group reports (metrics); must be quick.
  std::function<void(const std::string& group_id, double step_seconds, int32_t num_batched_tokens)>
      on_step;

  template <typename V>
  void visit_fields(V& v) {
    v("zmq_endpoint", endpoint, "ZeroMQ endpoint the router binds; worker groups connect to it");
    v("transport_key_file", transport_key_file,
      "CURVE key file (strata keygen) the worker groups must hold too; required off loopback");
    v("heartbeat_timeout_ms", heartbeat_timeout_ms, "a worker group silent this long is marked dead", config::Range{100, 600000});
  }
  Status validate() const;
};

// What /health, /ready and /metrics need to know about one worker group.
struct GroupInfo {
  std::string group_id;
  std::string model_name;
  uint64_t instance_id = 0;
  int64_t max_model_len = 0;
  int64_t vocab_size = 0;
  int32_t block_size = 0;
  int32_t tp = 1;
  int32_t pp = 1;
  bool alive = false;  // heard from within heartbeat_timeout_ms
  bool ready = false;  // the group's last Hello said ready (requests go to alive && ready)
  wire::KvStats kv;    // from the last StepOutputs or Heartbeat
  int64_t ms_since_last_message = 0;
  int64_t num_in_flight = 0;  // submitted to this group and not finished
  // The last StepOutputs.
  uint64_t last_step = 0;
  double last_step_seconds = 0;
  int32_t last_num_batched_tokens = 0;
  int32_t last_num_decode_tokens = 0;
  int32_t last_num_prefill_tokens = 0;
  // Totals since the group first registered.
  uint64_t num_step_messages = 0;      // StepOutputs received
  uint64_t num_output_tokens = 0;      // tokens received
  uint64_t num_requests_finished = 0;  // any finish_reason, "error" included
  uint64_t num_requests_failed = 0;    // finish_reason "error" (sent by the worker or ours)
  uint64_t num_deaths = 0;             // times marked dead
};

// Called on the dispatcher's IO thread for every output of a request, the last one carrying
// a finish_reason. It must be quick and must not block (hand the output to another thread
// if there is real work); it may call submit_to() and abort().
using OutputCallback = std::function<void(const wire::TokenOutput&)>;

class Dispatcher {
 public:
  explicit Dispatcher(DispatcherConfig config = {});
  ~Dispatcher();  // stop()
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Binds the socket and starts the IO thread. Fails when the endpoint cannot be bound.
  Status start();
  // Finishes every request in flight with "error", stops the IO thread, closes the socket.
  // Idempotent; the dispatcher cannot be started again.
  void stop();
  // The endpoint actually bound (with the port filled in for "*"); "" before start().
  std::string endpoint() const;

  // Sends `request` to group `group_id` (the router scheduler chose it); its outputs go to
  // `on_output`. Unavailable when that group is unknown, dead or not ready, or the dispatcher
  // is not running; InvalidArgument when request.id is already in flight. Sets
  // request.arrival_unix_ms when it is 0.
  Status submit_to(const std::string& group_id, wire::WireRequest request,
                   OutputCallback on_output);
  // Stops a request; its callback then gets a last output with finish_reason "abort" (or
  // whatever finish raced it). Unknown or finished ids are ignored.
  void abort(uint64_t id);
  // Ends every request in flight with "error" and `message`, and tells the groups to drop
  // them (a drain that ran out of time).
  void fail_in_flight(const std::string& message);
  // Asks every live group to exit (wire::Shutdown).
  void shutdown_groups(std::string reason);

  std::vector<GroupInfo> groups() const;  // sorted by group id
  bool any_ready() const;                 // some group is alive and ready

 private:
  struct State;
  void io_loop();

  DispatcherConfig config_;
  std::unique_ptr<State> state_;  // sockets and the mutex-guarded tables
  std::thread io_thread_;
};

}  // namespace strata::router
