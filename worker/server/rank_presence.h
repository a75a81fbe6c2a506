// RankPresence: a connection of its own from every rank of a multi-rank group but the
// driver, so that the router sees a follower rank die the moment it does. A killed follower
// leaves the driver blocked in a collective, still connected and still sending heartbeats;
// without this the router would learn of it only when mpirun ends the job a second or two
// later. The socket (wire::rank_identity, with the transport key) sends nothing; the
// router's probes to it are read and dropped by a thread of its own (router/dispatcher.h).
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "common/status.h"
#include "common/transport_key.h"

namespace strata {

class RankPresence {
 public:
  RankPresence(const std::string& router_endpoint, const std::string& group_id, int rank,
               const std::optional<TransportKey>& key);
  ~RankPresence();
  RankPresence(const RankPresence&) = delete;
  RankPresence& operator=(const RankPresence&) = delete;

 private:
  zmq::context_t context_{1};
  zmq::socket_t socket_{context_, zmq::socket_type::dealer};  // the thread's, after construction
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace strata
