// The Dispatcher's state, shared by its two source files: dispatcher.cpp (the public calls,
// the IO loop, sending) and dispatcher_messages.cpp (what groups send: Hello, StepOutputs,
// Heartbeats, and liveness). Private to those two; include router/dispatcher.h instead.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "router/disconnect_watch.h"
#include "router/dispatcher.h"
#include "router/worker_auth.h"

namespace strata::router {
namespace dispatch {

using Clock = std::chrono::steady_clock;

// One request the dispatcher has accepted and not yet seen finish.
struct InFlight {
  std::string group_id;
  OutputCallback callback;
};
using Delivery = std::pair<std::shared_ptr<InFlight>, wire::TokenOutput>;

inline wire::TokenOutput error_output(uint64_t id, std::string message) {
  wire::TokenOutput out;
  out.id = id;
  out.finish_reason = std::string(wire::kFinishError);
  out.error = std::move(message);
  return out;
}

// Runs callbacks outside the lock; a throwing callback is logged and does not stop the IO
// thread or the other deliveries.
inline void deliver(std::vector<Delivery>& deliveries) {
  for (auto& [request, output] : deliveries) {
    try {
      request->callback(output);
    } catch (const std::exception& e) {
      spdlog::error("dispatcher: the output callback of request {} threw: {}", output.id, e.what());
    } catch (...) {
      spdlog::error("dispatcher: the output callback of request {} threw", output.id);
    }
  }
  deliveries.clear();
}

}  // namespace dispatch

using dispatch::Clock;
using dispatch::deliver;
using dispatch::Delivery;
using dispatch::error_output;
using dispatch::InFlight;

struct Dispatcher::State {
  struct Group {
    GroupInfo info;
    Clock::time_point last_seen;
    std::unordered_set<uint64_t> in_flight;  // sent or about to be
    std::vector<wire::WireRequest> to_add;   // submitted since the last IO pass
    std::vector<uint64_t> to_abort;
    std::string shutdown_reason;
    bool shutdown = false;
    // Ranks (1 … tp·pp − 1) whose own connection has routed: only those can be lost.
    std::set<int> present_ranks;
    // The instance that lost a rank: its driver may still be connected and sending
    // heartbeats (blocked in a collective), but it is dead until a new instance says Hello
    // or, after a dropped connection rather than a death, every rank routes again.
    uint64_t lost_instance = 0;
  };

  zmq::context_t context{1};
  zmq::socket_t socket{context, zmq::socket_type::router};    // IO thread only, after start()
  zmq::socket_t wake_in{context, zmq::socket_type::pair};     // IO thread only
  zmq::socket_t wake_out{context, zmq::socket_type::pair};    // under `mu`
  std::string bound_endpoint;
  std::optional<DisconnectWatch> disconnects;  // IO thread only, after start()
  std::optional<WorkerAuthenticator> authenticator;  // with a transport key

  mutable std::mutex mu;
  bool running = false;
  bool stopping = false;
  bool wake_pending = false;
  std::map<std::string, Group> groups;  // by group id (= DEALER identity)
  std::unordered_map<uint64_t, std::shared_ptr<InFlight>> requests;
  std::vector<Delivery> local;  // finished without reaching a worker; delivered by the IO thread
  decltype(DispatcherConfig::on_step) on_step;  // the config's step observer
  int64_t tokenizer_vocab_size = 0;              // the config's, for apply_hello

  // Requires `mu`. Wakes the IO thread at most once per pass.
  void wake() {
    if (wake_pending) return;
    wake_pending = true;
    try {
      wake_out.send(zmq::str_buffer("w"), zmq::send_flags::dontwait);
    } catch (const zmq::error_t& e) {
      spdlog::warn("dispatcher: waking the IO thread failed: {}", e.what());
    }
  }

  // Requires `mu`. Forgets every request of `group`, giving each a final "error" output.
  void fail_group(Group& group, const std::string& message, std::vector<Delivery>& out) {
    for (uint64_t id : group.in_flight) {
      auto it = requests.find(id);
      if (it == requests.end()) continue;
      out.emplace_back(it->second, error_output(id, message));
      requests.erase(it);
      ++group.info.num_requests_finished;
      ++group.info.num_requests_failed;
    }
    group.in_flight.clear();
    group.to_add.clear();
    group.to_abort.clear();
  }

  // Requires `mu`. Applies one message from group `identity`. Outputs to deliver go to
  // `out`; ids the group reports but the dispatcher no longer tracks go to `stale` (they are
  // aborted on the worker so it stops spending work on them).
  void apply(const std::string& identity, wire::Message& message, std::vector<Delivery>& out,
             std::vector<uint64_t>& stale);
  // Requires `mu`. The parts of apply().
  void apply_hello(const std::string& identity, const wire::Hello& hello, std::vector<Delivery>& out);
  void apply_step(const std::string& identity, Group& group, wire::StepOutputs& step,
                  std::vector<Delivery>& out, std::vector<uint64_t>& stale);

  // The IO thread's passes; each takes `mu` itself.
  struct Outgoing {
    std::string group_id;
    wire::AddRequests add;
    wire::Abort abort;
    std::optional<wire::Shutdown> shutdown;
  };
  // Sends [identity, bytes]; false when the group cannot be reached now. IO thread only.
  bool send_to(const std::string& identity, const wire::Message& message);
  void receive_all(std::vector<Delivery>& deliveries);
  // What to send to each group; marks silent groups dead; sets `stop` when stop() was called.
  std::vector<Outgoing> take_outgoing(std::chrono::milliseconds timeout,
                                      std::vector<Delivery>& deliveries, bool& stop);
  void send_outgoing(std::vector<Outgoing>& outgoing, std::vector<Delivery>& deliveries);
  // Right after a disconnect: a group whose id no longer routes is dead now.
  void probe_groups(std::vector<Delivery>& deliveries);
  // Requires `mu`. What one group's probe found: routed[r] for each rank r (0: the driver).
  void apply_probe(Group& group, const std::vector<bool>& routed, std::vector<Delivery>& deliveries);
  bool probe_ranks_pending = false;  // a multi-rank group said Hello: see which ranks route
  // Requires `mu`. Marks `group` dead and fails its requests with `message`.
  void mark_dead(Group& group, const std::string& message, std::vector<Delivery>& deliveries);
  // Fails everything in flight and closes the sockets.
  void close(std::vector<Delivery>& deliveries);
};

}  // namespace strata::router
