#include "router/disconnect_watch.h"

#include <spdlog/spdlog.h>

namespace strata::router {
namespace {
constexpr auto kProbeWindow = std::chrono::milliseconds(500);
constexpr auto kRefusalLogInterval = std::chrono::seconds(5);
}  // namespace

DisconnectWatch::DisconnectWatch(zmq::context_t& context, zmq::socket_t& watched, const std::string& name)
    : monitor_(context, watched, ZMQ_EVENT_DISCONNECTED | kHandshakeFailedEvents, name) {}

void DisconnectWatch::read_events() {
  for (const SocketMonitor::Event& event : monitor_.read_events()) {
    if (event.id == ZMQ_EVENT_DISCONNECTED) {
      probe_until_ = Clock::now() + kProbeWindow;
      continue;
    }
    if (Clock::now() < next_refusal_log_) {
      ++refusals_not_logged_;
      continue;
    }
    spdlog::warn("dispatcher: refused a connection on {}{}: it failed the handshake, so it is a worker "
                 "without the router's transport key (--transport-key-file), with another one, or not a "
                 "strata worker", event.address,
                 refusals_not_logged_ ? fmt::format(" ({} more since the last report)", refusals_not_logged_) : "");
    refusals_not_logged_ = 0;
    next_refusal_log_ = Clock::now() + kRefusalLogInterval;
  }
}

}  // namespace strata::router
