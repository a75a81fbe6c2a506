#include "worker/server/rank_presence.h"

#include <chrono>

#include "common/wire.h"

namespace strata {

RankPresence::RankPresence(const std::string& router_endpoint, const std::string& group_id, int rank,
                           const std::optional<TransportKey>& key) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.set(zmq::sockopt::routing_id, wire::rank_identity(group_id, rank));
  if (key) use_as_curve_client(socket_, *key);
  socket_.connect(router_endpoint);
  thread_ = std::thread([this] {
    zmq::message_t dropped;
    while (!stopping_) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      try {
        if (zmq::poll(&item, 1, std::chrono::milliseconds(200)) > 0) {
          while (socket_.recv(dropped, zmq::recv_flags::dontwait)) {
          }
        }
      } catch (const zmq::error_t&) {  // EINTR: look at stopping_ again
      }
    }
  });
}

RankPresence::~RankPresence() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

}  // namespace strata
