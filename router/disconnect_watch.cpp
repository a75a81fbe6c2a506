#include "router/disconnect_watch.h"

#include <spdlog/spdlog.h>

namespace strata::router {
namespace {
constexpr auto kProbeWindow = std::chrono::milliseconds(500);
}  // namespace

DisconnectWatch::DisconnectWatch(zmq::context_t& context, zmq::socket_t& watched, const std::string& name)
    : watched_(watched), monitor_(context, zmq::socket_type::pair) {
  const std::string endpoint = "inproc://" + name;
  if (zmq_socket_monitor(watched_.handle(), endpoint.c_str(), ZMQ_EVENT_DISCONNECTED) != 0) {
    throw zmq::error_t();
  }
  monitor_.set(zmq::sockopt::linger, 0);
  monitor_.connect(endpoint);
}

DisconnectWatch::~DisconnectWatch() {
  zmq_socket_monitor(watched_.handle(), nullptr, 0);  // stops the monitor before its socket closes
}

void DisconnectWatch::read_events() {
  zmq::message_t frame;
  // Each event is two frames: (event id, value) and the peer's address.
  while (monitor_.recv(frame, zmq::recv_flags::dontwait)) {
    while (frame.more() && monitor_.recv(frame, zmq::recv_flags::dontwait)) {
    }
    probe_until_ = Clock::now() + kProbeWindow;
  }
}

}  // namespace strata::router
