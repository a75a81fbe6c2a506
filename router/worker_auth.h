// WorkerAuthenticator: the router's ZAP handler (ZeroMQ RFC 27). With a transport key
// (common/transport_key.h) the dispatcher's socket is a CURVE server, and libzmq asks this
// handler about every worker connection's handshake: only a client proving the router's
// own key pair is admitted; anything else (another key, no CURVE at all) is refused before
// a single message of it reaches the dispatcher, TCP and ipc alike.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "common/transport_key.h"

namespace strata::router {

class WorkerAuthenticator {
 public:
  // Binds libzmq's ZAP endpoint in `context` and answers from a thread of its own. Must be
  // constructed before the socket it guards binds: without a handler libzmq admits anyone.
  WorkerAuthenticator(zmq::context_t& context, const TransportKey& key);
  ~WorkerAuthenticator();  // stops the thread and closes the handler's socket
  WorkerAuthenticator(const WorkerAuthenticator&) = delete;
  WorkerAuthenticator& operator=(const WorkerAuthenticator&) = delete;

  uint64_t num_refused() const { return num_refused_.load(); }

 private:
  void serve();
  void answer(zmq::socket_t& socket);

  zmq::socket_t socket_;  // the thread's only, after construction
  std::array<uint8_t, 32> allowed_public_key_{};
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> num_refused_{0};
  std::thread thread_;
};

}  // namespace strata::router
