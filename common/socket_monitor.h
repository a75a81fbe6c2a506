// SocketMonitor: the events libzmq reports about one socket's connections (its socket
// monitor, read over an inproc pair): a peer gone, a handshake refused. Used by the
// router to see a worker group vanish at once (router/disconnect_watch.h) and by a worker
// to learn that the router refused its transport key instead of retrying in silence.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <zmq.hpp>

namespace strata {

class SocketMonitor {
 public:
  struct Event {
    uint16_t id = 0;      // ZMQ_EVENT_*
    std::string address;  // the peer's endpoint
  };

  // Starts monitoring `events` (ZMQ_EVENT_* bits) of `watched` (which must outlive this)
  // over an inproc pair named `name`, unique in `context`.
  SocketMonitor(zmq::context_t& context, zmq::socket_t& watched, int events, const std::string& name);
  ~SocketMonitor();
  SocketMonitor(const SocketMonitor&) = delete;
  SocketMonitor& operator=(const SocketMonitor&) = delete;

  zmq::pollitem_t pollitem() { return {monitor_.handle(), 0, ZMQ_POLLIN, 0}; }
  // The pending events, oldest first; never blocks.
  std::vector<Event> read_events();

 private:
  zmq::socket_t& watched_;
  zmq::socket_t monitor_;
};

// Handshakes refused: another transport key, or CURVE on one side only (common/transport_key.h).
inline constexpr int kHandshakeFailedEvents =
    ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;

}  // namespace strata
