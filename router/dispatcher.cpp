#include "router/dispatcher.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <mutex>
#include <optional>
#include <utility>

#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "common/listen_address.h"
#include "common/transport_key.h"
#include "router/dispatcher_state.h"

namespace strata::router {

Status DispatcherConfig::validate() const {
  if (endpoint.empty()) return invalid_argument("`zmq_endpoint` must be set (e.g. tcp://0.0.0.0:5557)");
  if (transport_key_file.empty() && endpoint.rfind("tcp://", 0) == 0) {
    const std::string host = endpoint.substr(6, endpoint.rfind(':') - 6);
    if (!is_loopback_host(host == "[::1]" ? "::1" : host)) {
      return invalid_argument(
          "`zmq_endpoint` {} is reachable from other machines, so it needs a transport key: anyone "
          "reaching it could register as a worker group and read prompts. Create one with `strata keygen "
          "FILE` and give the file to the router and every worker (--transport-key-file), or bind a "
          "loopback address", endpoint);
    }
  }
  return config::check_ranges(*this);
}


Dispatcher::Dispatcher(DispatcherConfig config)
    : config_(std::move(config)), state_(std::make_unique<State>()) {
  state_->on_step = config_.on_step;
  state_->tokenizer_vocab_size = config_.tokenizer_vocab_size;
}

Dispatcher::~Dispatcher() { stop(); }

Status Dispatcher::start() {
  STRATA_RETURN_IF_ERROR(config_.validate());
  State& s = *state_;
  std::lock_guard lock(s.mu);
  if (s.running || s.stopping) return invalid_argument("the dispatcher was already started");
  std::optional<TransportKey> key;
  if (!config_.transport_key_file.empty()) {
    STRATA_ASSIGN_OR_RETURN(key, load_transport_key(config_.transport_key_file));
  }
  try {
    if (key) {
      s.authenticator.emplace(s.context, *key);  // before bind: libzmq admits anyone without it
      use_as_curve_server(s.socket, *key);
    }
    s.socket.set(zmq::sockopt::linger, 0);
    s.socket.set(zmq::sockopt::router_mandatory, 1);  // unroutable sends fail instead of vanishing
    // A second connection with a live group's id is refused (no handover): an impostor
    // cannot displace a group. ZMTP heartbeats retire a dead connection's id, so a
    // restarted worker can take it then.
    s.socket.set(zmq::sockopt::router_handover, 0);
    s.socket.set(zmq::sockopt::heartbeat_ivl, std::max(100, config_.heartbeat_timeout_ms / 5));
    s.socket.set(zmq::sockopt::heartbeat_timeout, config_.heartbeat_timeout_ms);
    s.socket.bind(config_.endpoint);
    s.disconnects.emplace(s.context, s.socket, fmt::format("strata-dispatcher-monitor-{}", fmt::ptr(this)));
    s.bound_endpoint = s.socket.get(zmq::sockopt::last_endpoint);
    const std::string wake_endpoint = fmt::format("inproc://strata-dispatcher-wake-{}", fmt::ptr(this));
    s.wake_in.set(zmq::sockopt::linger, 0);
    s.wake_out.set(zmq::sockopt::linger, 0);
    s.wake_in.bind(wake_endpoint);
    s.wake_out.connect(wake_endpoint);
  } catch (const zmq::error_t& e) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("dispatcher: cannot bind `{}`: {}; is another router running there?",
                              config_.endpoint, e.what()));
  }
  s.running = true;
  io_thread_ = std::thread([this] { io_loop(); });
  spdlog::info("dispatcher: waiting for worker groups on {}", s.bound_endpoint);
  return ok_status();
}

void Dispatcher::stop() {
  State& s = *state_;
  {
    std::lock_guard lock(s.mu);
    if (!s.running) return;
    s.stopping = true;
    s.wake();
  }
  if (io_thread_.joinable()) io_thread_.join();
}

std::string Dispatcher::endpoint() const {
  std::lock_guard lock(state_->mu);
  return state_->bound_endpoint;
}

Status Dispatcher::submit_to(const std::string& group_id, wire::WireRequest request,
                             OutputCallback on_output) {
  State& s = *state_;
  std::lock_guard lock(s.mu);
  if (!s.running || s.stopping) {
    return Status(StatusCode::kUnavailable, "the dispatcher is not running; retry the request");
  }
  if (s.requests.count(request.id)) {
    return invalid_argument("request id {} is already in flight", request.id);
  }
  auto it = s.groups.find(group_id);
  if (it == s.groups.end() || !it->second.info.alive || !it->second.info.ready) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("worker group `{}` is not {}; retry the request", group_id,
                              it == s.groups.end() ? "registered" : "alive and ready"));
  }
  State::Group& group = it->second;
  if (request.arrival_unix_ms == 0) request.arrival_unix_ms = wire::unix_ms_now();
  const uint64_t id = request.id;
  s.requests.emplace(id, std::make_shared<InFlight>(InFlight{group_id, std::move(on_output)}));
  group.in_flight.insert(id);
  group.to_add.push_back(std::move(request));
  s.wake();
  return ok_status();
}

void Dispatcher::fail_in_flight(const std::string& message) {
  State& s = *state_;
  std::lock_guard lock(s.mu);
  for (auto& [id, group] : s.groups) {
    std::vector<uint64_t> sent;  // the ones a worker holds KV for
    for (uint64_t request_id : group.in_flight) {
      if (std::none_of(group.to_add.begin(), group.to_add.end(),
                       [request_id](const wire::WireRequest& r) { return r.id == request_id; })) {
        sent.push_back(request_id);
      }
    }
    s.fail_group(group, message, s.local);  // delivered by the IO thread, like every output
    group.to_abort = std::move(sent);
  }
  s.wake();
}

void Dispatcher::abort(uint64_t id) {
  State& s = *state_;
  std::lock_guard lock(s.mu);
  auto it = s.requests.find(id);
  if (it == s.requests.end()) return;
  State::Group& group = s.groups.at(it->second->group_id);
  auto queued = std::find_if(group.to_add.begin(), group.to_add.end(),
                             [id](const wire::WireRequest& r) { return r.id == id; });
  if (queued != group.to_add.end()) {
    // Not sent yet: finish it here (delivered by the IO thread, like every output).
    group.to_add.erase(queued);
    group.in_flight.erase(id);
    wire::TokenOutput out;
    out.id = id;
    out.finish_reason = std::string(wire::kFinishAbort);
    s.local.emplace_back(it->second, std::move(out));
    s.requests.erase(it);
    ++group.info.num_requests_finished;
  } else {
    group.to_abort.push_back(id);
  }
  s.wake();
}

void Dispatcher::shutdown_groups(std::string reason) {
  State& s = *state_;
  std::lock_guard lock(s.mu);
  for (auto& [id, group] : s.groups) {
    if (!group.info.alive) continue;
    group.shutdown = true;
    group.shutdown_reason = reason;
  }
  if (s.running) s.wake();
}

std::vector<GroupInfo> Dispatcher::groups() const {
  State& s = *state_;
  std::lock_guard lock(s.mu);
  const auto now = Clock::now();
  std::vector<GroupInfo> out;
  out.reserve(s.groups.size());
  for (const auto& [id, group] : s.groups) {
    GroupInfo info = group.info;
    info.num_in_flight = static_cast<int64_t>(group.in_flight.size());
    info.ms_since_last_message =
        std::chrono::duration_cast<std::chrono::milliseconds>(now - group.last_seen).count();
    out.push_back(std::move(info));
  }
  return out;
}

bool Dispatcher::any_ready() const {
  std::lock_guard lock(state_->mu);
  for (const auto& [id, group] : state_->groups) {
    if (group.info.alive && group.info.ready) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------
// The IO thread.

bool Dispatcher::State::send_to(const std::string& identity, const wire::Message& message) {
  const std::string bytes = wire::encode(message);
  try {
    if (!socket.send(zmq::buffer(identity), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      return false;
    }
    socket.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
    return true;
  } catch (const zmq::error_t& e) {  // EHOSTUNREACH: the group is not connected
    spdlog::warn("dispatcher: cannot send {} to group {}: {}",
                 wire::message_type_name(wire::message_type(message)), identity, e.what());
    return false;
  }
}

std::vector<Dispatcher::State::Outgoing> Dispatcher::State::take_outgoing(
    std::chrono::milliseconds timeout, std::vector<Delivery>& deliveries, bool& stop) {
  std::vector<Outgoing> outgoing;
  std::lock_guard lock(mu);
  wake_pending = false;
  stop = stopping;
  for (Delivery& d : local) deliveries.push_back(std::move(d));
  local.clear();
  const auto now = Clock::now();
  for (auto& [id, group] : groups) {
    if (group.info.alive && now - group.last_seen > timeout) {
      spdlog::warn("dispatcher: worker group {} sent nothing for {} ms", id, timeout.count());
      mark_dead(group, fmt::format("worker group {} stopped answering; retry the request", id), deliveries);
      continue;
    }
    if (group.to_add.empty() && group.to_abort.empty() && !group.shutdown) continue;
    Outgoing& o = outgoing.emplace_back();
    o.group_id = id;
    o.add.requests.swap(group.to_add);
    o.abort.ids.swap(group.to_abort);
    if (group.shutdown) o.shutdown = wire::Shutdown{.reason = group.shutdown_reason};
    group.shutdown = false;
  }
  return outgoing;
}

void Dispatcher::State::send_outgoing(std::vector<Outgoing>& outgoing,
                                      std::vector<Delivery>& deliveries) {
  for (Outgoing& o : outgoing) {
    if (!o.abort.ids.empty()) send_to(o.group_id, o.abort);
    if (!o.add.requests.empty() && !send_to(o.group_id, o.add)) {
      std::lock_guard lock(mu);
      Group& group = groups.at(o.group_id);
      for (const wire::WireRequest& r : o.add.requests) {
        auto it = requests.find(r.id);
        if (it == requests.end()) continue;
        deliveries.emplace_back(it->second, error_output(r.id, fmt::format(
            "worker group {} could not be reached; retry the request", o.group_id)));
        requests.erase(it);
        group.in_flight.erase(r.id);
        ++group.info.num_requests_finished;
        ++group.info.num_requests_failed;
      }
    }
    if (o.shutdown) send_to(o.group_id, *o.shutdown);
  }
}

void Dispatcher::State::close(std::vector<Delivery>& deliveries) {
  {
    std::lock_guard lock(mu);
    for (auto& [id, group] : groups) {
      fail_group(group, "the router is shutting down; retry the request", deliveries);
    }
    for (Delivery& d : local) deliveries.push_back(std::move(d));
    local.clear();
  }
  deliver(deliveries);
  std::lock_guard lock(mu);
  disconnects.reset();
  socket.close();
  authenticator.reset();
  wake_in.close();
  wake_out.close();
  running = false;
}

void Dispatcher::io_loop() {
  State& s = *state_;
  const auto timeout = std::chrono::milliseconds(config_.heartbeat_timeout_ms);
  const auto tick = std::clamp(timeout / 4, std::chrono::milliseconds(5), std::chrono::milliseconds(50));
  std::vector<Delivery> deliveries;
  bool stopping = false;
  while (!stopping) {
    zmq::pollitem_t items[] = {{s.socket.handle(), 0, ZMQ_POLLIN, 0},
                               {s.wake_in.handle(), 0, ZMQ_POLLIN, 0}, s.disconnects->pollitem()};
    try {
      zmq::poll(items, 3, tick);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) spdlog::error("dispatcher: poll failed: {}", e.what());
      continue;
    }
    if (items[1].revents & ZMQ_POLLIN) {
      zmq::message_t drained;
      while (s.wake_in.recv(drained, zmq::recv_flags::dontwait)) {
      }
    }
    if (items[2].revents & ZMQ_POLLIN) s.disconnects->read_events();
    s.receive_all(deliveries);                   // 1. everything the groups sent
    if (s.disconnects->probing() || s.probe_ranks_pending) s.probe_groups(deliveries);
    std::vector<State::Outgoing> outgoing =      // 2. what other threads queued; liveness
        s.take_outgoing(timeout, deliveries, stopping);
    s.send_outgoing(outgoing, deliveries);
    deliver(deliveries);
  }
  s.close(deliveries);  // nothing in flight is left without an answer
}

}  // namespace strata::router
