#include "router/worker_auth.h"

#include <cstring>
#include <vector>

#include <spdlog/spdlog.h>

namespace strata::router {
namespace {

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";  // fixed by RFC 27

std::string frame_text(const zmq::message_t& frame) { return std::string(frame.to_string_view()); }

}  // namespace

WorkerAuthenticator::WorkerAuthenticator(zmq::context_t& context, const TransportKey& key)
    : socket_(context, zmq::socket_type::rep) {
  zmq_z85_decode(allowed_public_key_.data(), key.public_key.c_str());
  socket_.set(zmq::sockopt::linger, 0);
  socket_.bind(kZapEndpoint);
  thread_ = std::thread([this] { serve(); });
}

WorkerAuthenticator::~WorkerAuthenticator() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  socket_.close();
}

void WorkerAuthenticator::serve() {
  while (!stopping_) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    try {
      if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) > 0) answer(socket_);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) spdlog::error("dispatcher: the worker authenticator failed: {}", e.what());
    }
  }
}

// Request: version, request id, domain, address, routing id, mechanism, credentials...
// Reply: version, request id, status code, status text, user id, metadata.
void WorkerAuthenticator::answer(zmq::socket_t& socket) {
  std::vector<zmq::message_t> request;
  zmq::message_t frame;
  do {
    if (!socket.recv(frame, zmq::recv_flags::dontwait)) break;
    request.push_back(std::move(frame));
  } while (request.back().more());
  if (request.size() < 6) return;  // not a ZAP request; REP cannot answer it sensibly
  const std::string mechanism = frame_text(request[5]);
  const std::string address = frame_text(request[3]);
  const bool admitted = mechanism == "CURVE" && request.size() >= 7 && request[6].size() == allowed_public_key_.size() &&
                        std::memcmp(request[6].data(), allowed_public_key_.data(), allowed_public_key_.size()) == 0;
  if (!admitted) {
    ++num_refused_;
    spdlog::warn("dispatcher: refused a worker connection{}{}: {}", address.empty() ? "" : " from ",
                 address, mechanism == "CURVE" ? "its key is not the router's transport key"
                                               : "it has no transport key (--transport-key-file)");
  }
  const std::string status = admitted ? "200" : "400";
  const std::string text = admitted ? "OK" : "not a holder of the transport key";
  socket.send(zmq::str_buffer("1.0"), zmq::send_flags::sndmore);
  socket.send(request[1], zmq::send_flags::sndmore);
  socket.send(zmq::buffer(status), zmq::send_flags::sndmore);
  socket.send(zmq::buffer(text), zmq::send_flags::sndmore);
  socket.send(zmq::str_buffer(""), zmq::send_flags::sndmore);
  socket.send(zmq::str_buffer(""), zmq::send_flags::none);
}

}  // namespace strata::router
