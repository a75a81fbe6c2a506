#include "router/dispatcher.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "common/listen_address.h"
#include "common/transport_key.h"
#include "router/disconnect_watch.h"
#include "router/hello_check.h"
#include "router/worker_auth.h"

namespace strata::router {
namespace {

using Clock = std::chrono::steady_clock;

// One request the dispatcher has accepted and not yet seen finish.
struct InFlight {
  std::string group_id;
  OutputCallback callback;
};
using Delivery = std::pair<std::shared_ptr<InFlight>, wire::TokenOutput>;

wire::TokenOutput error_output(uint64_t id, std::string message) {
  wire::TokenOutput out;
  out.id = id;
  out.finish_reason = std::string(wire::kFinishError);
  out.error = std::move(message);
  return out;
}

// Runs callbacks outside the lock; a throwing callback is logged and does not stop the IO
// thread or the other deliveries.
void deliver(std::vector<Delivery>& deliveries) {
  for (auto& [request, output] : deliveries) {
    try {
      request->callback(output);
    } catch (const std::exception& e) {
      spdlog::error("dispatcher: the output callback of request {} threw: {}", output.id, e.what());
    } catch (...) {
      spdlog::error("dispatcher: the output callback of request {} threw", output.id);
    }
  }
  deliveries.clear();
}

}  // namespace

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

struct Dispatcher::State {
  struct Group {
    GroupInfo info;
    Clock::time_point last_seen;
    std::unordered_set<uint64_t> in_flight;  // sent or about to be
    std::vector<wire::WireRequest> to_add;   // submitted since the last IO pass
    std::vector<uint64_t> to_abort;
    std::string shutdown_reason;
    bool shutdown = false;
  };

  zmq::context_t context{1};
  zmq::socket_t socket{context, zmq::socket_type::router};    // IO thread only, after start()
  zmq::socket_t wake_in{context, zmq::socket_type::pair};     // IO thread only
  zmq::socket_t wake_out{context, zmq::socket_type::pair};    // under `mu`
  std::string bound_endpoint;
  std::optional<DisconnectWatch> disconnects;  // IO thread only, after start()
  std::optional<WorkerAuthenticator> authenticator;  // with a transport key

  mutable std::mutex mu;
  bool running = false;
  bool stopping = false;
  bool wake_pending = false;
  std::map<std::string, Group> groups;  // by group id (= DEALER identity)
  std::unordered_map<uint64_t, std::shared_ptr<InFlight>> requests;
  std::vector<Delivery> local;  // finished without reaching a worker; delivered by the IO thread
  decltype(DispatcherConfig::on_step) on_step;  // the config's step observer
  int64_t tokenizer_vocab_size = 0;              // the config's, for apply_hello

  // Requires `mu`. Wakes the IO thread at most once per pass.
  void wake() {
    if (wake_pending) return;
    wake_pending = true;
    try {
      wake_out.send(zmq::str_buffer("w"), zmq::send_flags::dontwait);
    } catch (const zmq::error_t& e) {
      spdlog::warn("dispatcher: waking the IO thread failed: {}", e.what());
    }
  }

  // Requires `mu`. Forgets every request of `group`, giving each a final "error" output.
  void fail_group(Group& group, const std::string& message, std::vector<Delivery>& out) {
    for (uint64_t id : group.in_flight) {
      auto it = requests.find(id);
      if (it == requests.end()) continue;
      out.emplace_back(it->second, error_output(id, message));
      requests.erase(it);
      ++group.info.num_requests_finished;
      ++group.info.num_requests_failed;
    }
    group.in_flight.clear();
    group.to_add.clear();
    group.to_abort.clear();
  }

  // Requires `mu`. Applies one message from group `identity`. Outputs to deliver go to
  // `out`; ids the group reports but the dispatcher no longer tracks go to `stale` (they are
  // aborted on the worker so it stops spending work on them).
  void apply(const std::string& identity, wire::Message& message, std::vector<Delivery>& out,
             std::vector<uint64_t>& stale);
  // Requires `mu`. The parts of apply().
  void apply_hello(const std::string& identity, const wire::Hello& hello, std::vector<Delivery>& out);
  void apply_step(const std::string& identity, Group& group, wire::StepOutputs& step,
                  std::vector<Delivery>& out, std::vector<uint64_t>& stale);

  // The IO thread's passes; each takes `mu` itself.
  struct Outgoing {
    std::string group_id;
    wire::AddRequests add;
    wire::Abort abort;
    std::optional<wire::Shutdown> shutdown;
  };
  // Sends [identity, bytes]; false when the group cannot be reached now. IO thread only.
  bool send_to(const std::string& identity, const wire::Message& message);
  void receive_all(std::vector<Delivery>& deliveries);
  // What to send to each group; marks silent groups dead; sets `stop` when stop() was called.
  std::vector<Outgoing> take_outgoing(std::chrono::milliseconds timeout,
                                      std::vector<Delivery>& deliveries, bool& stop);
  void send_outgoing(std::vector<Outgoing>& outgoing, std::vector<Delivery>& deliveries);
  // Right after a disconnect: a group whose id no longer routes is dead now.
  void probe_groups(std::vector<Delivery>& deliveries);
  // Requires `mu`. Marks `group` dead and fails its requests with `message`.
  void mark_dead(Group& group, const std::string& message, std::vector<Delivery>& deliveries);
  // Fails everything in flight and closes the sockets.
  void close(std::vector<Delivery>& deliveries);
};

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

void Dispatcher::State::receive_all(std::vector<Delivery>& deliveries) {
  // Bounded so that a flood from the groups cannot starve what other threads queued.
  for (int budget = 4096; budget > 0; --budget) {
    zmq::message_t identity_frame;
    if (!socket.recv(identity_frame, zmq::recv_flags::dontwait)) break;
    std::vector<zmq::message_t> frames;
    while (frames.empty() ? identity_frame.more() : frames.back().more()) {
      zmq::message_t frame;
      (void)socket.recv(frame, zmq::recv_flags::none);  // parts of a message arrive together
      frames.push_back(std::move(frame));
    }
    const std::string identity = identity_frame.to_string();
    if (frames.size() != 1) {
      spdlog::warn("dispatcher: ignoring a message of {} frames from `{}`", frames.size() + 1, identity);
      continue;
    }
    StatusOr<wire::Message> message = wire::decode(frames[0].to_string_view());
    if (!message.ok()) {
      spdlog::warn("dispatcher: ignoring a message from `{}`: {}", identity, message.status().message());
      continue;
    }
    std::vector<uint64_t> stale;
    {
      std::lock_guard lock(mu);
      apply(identity, *message, deliveries, stale);
    }
    if (!stale.empty()) send_to(identity, wire::Abort{.ids = stale});
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

void Dispatcher::State::mark_dead(Group& group, const std::string& message, std::vector<Delivery>& deliveries) {
  group.info.alive = false;
  ++group.info.num_deaths;
  spdlog::warn("dispatcher: marking worker group {} dead and failing its {} requests: {}",
               group.info.group_id, group.in_flight.size(), message);
  fail_group(group, message, deliveries);
}

void Dispatcher::State::probe_groups(std::vector<Delivery>& deliveries) {
  std::vector<std::string> alive;
  {
    std::lock_guard lock(mu);
    for (const auto& [id, group] : groups) {
      if (group.info.alive) alive.push_back(id);
    }
  }
  const std::string probe = wire::encode(wire::Abort{});  // aborts nothing
  for (const std::string& id : alive) {
    try {
      if (socket.send(zmq::buffer(id), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        socket.send(zmq::buffer(probe), zmq::send_flags::dontwait);
      }
      continue;  // routed (or only busy)
    } catch (const zmq::error_t& e) {
      if (e.num() != EHOSTUNREACH) continue;
    }
    std::lock_guard lock(mu);
    auto it = groups.find(id);
    if (it == groups.end() || !it->second.info.alive) continue;
    mark_dead(it->second, fmt::format("worker group {} failed: its connection to the router closed (the "
                                      "process exited or was killed); retry the request", id),
              deliveries);
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
    if (s.disconnects->probing()) s.probe_groups(deliveries);
    std::vector<State::Outgoing> outgoing =      // 2. what other threads queued; liveness
        s.take_outgoing(timeout, deliveries, stopping);
    s.send_outgoing(outgoing, deliveries);
    deliver(deliveries);
  }
  s.close(deliveries);  // nothing in flight is left without an answer
}

void Dispatcher::State::apply_hello(const std::string& identity, const wire::Hello& hello,
                                    std::vector<Delivery>& out) {
  if (const std::string why = hello_refusal(identity, hello, tokenizer_vocab_size); !why.empty()) {
    spdlog::error("dispatcher: refusing a worker group: {}", why);
    send_to(identity, wire::Shutdown{.reason = why});  // it exits, saying why
    return;
  }
  auto [it, is_new] = groups.try_emplace(identity);
  Group& group = it->second;
  GroupInfo& info = group.info;
  if (!is_new && info.instance_id != hello.instance_id) {
    spdlog::warn("dispatcher: worker group {} restarted; failing its {} requests", identity,
                 group.in_flight.size());
    fail_group(group, fmt::format("worker group {} restarted; retry the request", identity), out);
  }
  if (is_new || info.instance_id != hello.instance_id || info.ready != hello.ready || !info.alive) {
    spdlog::info("dispatcher: worker group {} ({}): {} KV blocks of {} tokens, context {}, "
                 "tp {} pp {}, {}", identity, hello.model_name, hello.total_blocks,
                 hello.block_size, hello.max_model_len, hello.tp, hello.pp,
                 hello.ready ? "ready" : "not ready");
  }
  info.group_id = identity;
  info.model_name = hello.model_name;
  info.instance_id = hello.instance_id;
  info.max_model_len = hello.max_model_len;
  info.vocab_size = hello.vocab_size;
  info.block_size = hello.block_size;
  info.tp = hello.tp;
  info.pp = hello.pp;
  info.ready = hello.ready;
  info.alive = true;
  if (is_new) info.kv.total_blocks = info.kv.free_blocks = hello.total_blocks;
  group.last_seen = Clock::now();
}

void Dispatcher::State::apply_step(const std::string& identity, Group& group,
                                   wire::StepOutputs& step, std::vector<Delivery>& out,
                                   std::vector<uint64_t>& stale) {
  GroupInfo& info = group.info;
  info.kv = step.kv;
  ++info.num_step_messages;
  if (step.step > info.last_step || step.num_batched_tokens > 0) {
    info.last_step = step.step;
    info.last_step_seconds = step.step_seconds;
    info.last_num_batched_tokens = step.num_batched_tokens;
    info.last_num_decode_tokens = step.num_decode_tokens;
    info.last_num_prefill_tokens = step.num_prefill_tokens;
  }
  if (on_step && step.num_batched_tokens > 0) {
    on_step(identity, step.step_seconds, step.num_batched_tokens);
  }
  for (wire::TokenOutput& o : step.outputs) {
    auto req = requests.find(o.id);
    if (req == requests.end() || req->second->group_id != identity) {
      if (!o.finished()) stale.push_back(o.id);
      continue;
    }
    info.num_output_tokens += o.token_ids.size();
    std::shared_ptr<InFlight> request = req->second;
    if (o.finished()) {
      requests.erase(req);
      group.in_flight.erase(o.id);
      ++info.num_requests_finished;
      if (o.finish_reason == wire::kFinishError) ++info.num_requests_failed;
    }
    out.emplace_back(std::move(request), std::move(o));
  }
}

void Dispatcher::State::apply(const std::string& identity, wire::Message& message,
                              std::vector<Delivery>& out, std::vector<uint64_t>& stale) {
  if (auto* hello = std::get_if<wire::Hello>(&message)) return apply_hello(identity, *hello, out);

  // Heartbeats come from each worker's own heartbeat socket (identity "<group>/heartbeat",
  // so a long engine step cannot delay them); they name their group.
  const auto* heartbeat = std::get_if<wire::Heartbeat>(&message);
  if (heartbeat != nullptr && identity != heartbeat->group_id + "/heartbeat" && identity != heartbeat->group_id) {
    return;  // no connection keeps another group alive
  }
  auto it = groups.find(heartbeat != nullptr ? heartbeat->group_id : identity);
  if (it == groups.end()) {
    // Not registered yet (e.g. this router restarted): its Hello is repeated every few
    // seconds. Outputs of requests this router never sent are aborted.
    if (auto* step = std::get_if<wire::StepOutputs>(&message)) {
      for (const wire::TokenOutput& o : step->outputs) {
        if (!o.finished()) stale.push_back(o.id);
      }
    }
    return;
  }
  Group& group = it->second;
  if (!group.info.alive) {
    spdlog::info("dispatcher: worker group {} is answering again", identity);
    group.info.alive = true;
  }
  group.last_seen = Clock::now();
  if (heartbeat != nullptr) {
    group.info.kv = heartbeat->kv;
  } else if (auto* step = std::get_if<wire::StepOutputs>(&message)) {
    apply_step(identity, group, *step, out, stale);
  } else {
    spdlog::warn("dispatcher: ignoring a {} message from group {} (only workers' messages are "
                 "expected)", wire::message_type_name(wire::message_type(message)), identity);
  }
}

}  // namespace strata::router
