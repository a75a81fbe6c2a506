#include "common/socket_monitor.h"

#include <cstring>

namespace strata {

SocketMonitor::SocketMonitor(zmq::context_t& context, zmq::socket_t& watched, int events, const std::string& name)
    : watched_(watched), monitor_(context, zmq::socket_type::pair) {
  const std::string endpoint = "inproc://" + name;
  if (zmq_socket_monitor(watched_.handle(), endpoint.c_str(), events) != 0) throw zmq::error_t();
  monitor_.set(zmq::sockopt::linger, 0);
  monitor_.connect(endpoint);
}

SocketMonitor::~SocketMonitor() {
  zmq_socket_monitor(watched_.handle(), nullptr, 0);  // stops the monitor before its socket closes
}

std::vector<SocketMonitor::Event> SocketMonitor::read_events() {
  std::vector<Event> events;
  zmq::message_t frame, address;
  // Each event is two frames: (event id, value) and the peer's address.
  while (monitor_.recv(frame, zmq::recv_flags::dontwait)) {
    Event event;
    if (frame.size() >= sizeof event.id) std::memcpy(&event.id, frame.data(), sizeof event.id);
    while (frame.more() && monitor_.recv(address, zmq::recv_flags::dontwait)) {
      event.address = address.to_string();
      if (!address.more()) break;
    }
    events.push_back(std::move(event));
  }
  return events;
}

}  // namespace strata
