// DisconnectWatch: notices at once that a peer of a ZeroMQ socket went away (its process
// exited or was killed: the kernel closed the connection), through libzmq's socket
// monitor. A ROUTER socket does not say which peer it was, so the owner then probes its
// peers (Dispatcher: a send to a vanished routing id fails) for a short while after each
// event, instead of waiting for the heartbeat timeout.
#pragma once

#include <chrono>
#include <string>

#include <zmq.hpp>

namespace strata::router {

class DisconnectWatch {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts monitoring `watched` (which must outlive this) over an inproc pair named `name`.
  DisconnectWatch(zmq::context_t& context, zmq::socket_t& watched, const std::string& name);
  ~DisconnectWatch();

  zmq::pollitem_t pollitem() { return {monitor_.handle(), 0, ZMQ_POLLIN, 0}; }
  // Reads the pending events (call when pollitem() is readable).
  void read_events();
  // True for a while after a disconnect: pipes close a little after the event, so one probe
  // right away could still find the peer.
  bool probing() const { return Clock::now() < probe_until_; }

 private:
  zmq::socket_t& watched_;
  zmq::socket_t monitor_;
  Clock::time_point probe_until_{};
};

}  // namespace strata::router
