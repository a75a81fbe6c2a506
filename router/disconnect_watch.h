// DisconnectWatch: notices at once that a peer of a ZeroMQ socket went away (its process
// exited or was killed: the kernel closed the connection), through libzmq's socket
// monitor. A ROUTER socket does not say which peer it was, so the owner then probes its
// peers (Dispatcher: a send to a vanished routing id fails) for a short while after each
// event, instead of waiting for the heartbeat timeout. Connections that fail the handshake
// (no or another transport key) are logged, so a misconfigured worker is not a mystery.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <zmq.hpp>

#include "common/socket_monitor.h"

namespace strata::router {

class DisconnectWatch {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts monitoring `watched` (which must outlive this) over an inproc pair named `name`.
  DisconnectWatch(zmq::context_t& context, zmq::socket_t& watched, const std::string& name);

  zmq::pollitem_t pollitem() { return monitor_.pollitem(); }
  // Reads the pending events (call when pollitem() is readable).
  void read_events();
  // True for a while after a disconnect: pipes close a little after the event, so one probe
  // right away could still find the peer.
  bool probing() const { return Clock::now() < probe_until_; }

 private:
  SocketMonitor monitor_;
  Clock::time_point probe_until_{};
  // Refused handshakes are logged at most every few seconds: a misconfigured worker retries
  // ten times a second.
  Clock::time_point next_refusal_log_{};
  uint64_t refusals_not_logged_ = 0;
};

}  // namespace strata::router
