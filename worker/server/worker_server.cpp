#include "worker/server/worker_server.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <limits>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "common/socket_monitor.h"
#include "common/transport_key.h"

namespace strata {
namespace {

using Clock = std::chrono::steady_clock;

// Runs one short request through the engine so that first-touch allocations, thread-pool
// start-up and page faults happen before the group reports ready.
Status warm_up(Engine& engine, const LoadedModel& model) {
  constexpr RequestId kWarmUpId = std::numeric_limits<RequestId>::max();
  Request request;
  request.id = kWarmUpId;
  for (int32_t i = 1; i <= 4; ++i) {
    request.prompt_ids.push_back(static_cast<int32_t>(i % model.config.vocab_size));
  }
  request.sampling.temperature = 0.0f;
  request.sampling.max_tokens = 2;
  request.sampling.ignore_eos = true;
  STRATA_RETURN_IF_ERROR(engine.add_request(std::move(request)).with_context("warm-up request"));
  while (engine.has_unfinished()) engine.step();
  return ok_status();
}

wire::TokenOutput to_wire(const SequenceOutput& out) {
  const int32_t logprobs = out.logprobs;
  wire::TokenOutput t{.id = out.id,
                      .token_ids = {},
                      .logprobs = {},
                      .top_logprobs = {},
                      .finish_reason = out.finished() ? std::string(finish_reason_name(out.finish_reason)) : "",
                      .error = {},
                      .num_prompt_tokens = out.num_prompt_tokens,
                      .num_cached_tokens = out.num_cached_tokens,
                      .num_output_tokens = out.num_output_tokens};
  for (const SampledToken& token : out.new_tokens) {
    t.token_ids.push_back(token.id);
    if (logprobs >= 0) t.logprobs.push_back(token.logprob);
    if (logprobs > 0) t.top_logprobs.push_back(token.top_logprobs);
  }
  return t;
}

// Both of the worker's sockets: no linger (close never waits for an absent router), the
// routing id the router knows them by, the transport key when there is one.
void connect_dealer(zmq::socket_t& socket, const WorkerServerConfig& config,
                    const std::optional<TransportKey>& key, const std::string& routing_id) {
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::routing_id, routing_id);
  if (key) use_as_curve_client(socket, *key);
  socket.connect(config.router_endpoint);
}

uint64_t random_instance_id() {
  std::random_device device;
  return (uint64_t{device()} << 32) ^ device() ^
         static_cast<uint64_t>(Clock::now().time_since_epoch().count());
}

}  // namespace

Status WorkerServerConfig::validate() const {
  if (group_id.empty() || group_id.size() > 255) {
    return invalid_argument("`group_id` must be 1 to 255 bytes. Given: \"{}\" ({} bytes)", group_id,
                            group_id.size());
  }
  if (router_endpoint.empty()) return invalid_argument("`router` (--router) must be set (e.g. tcp://host:5557)");
  STRATA_RETURN_IF_ERROR(config::check_ranges(*this));
  if (hello_interval_ms < heartbeat_ms || hello_interval_ms > 600000) {
    return invalid_argument("`hello_interval_ms` must be in [heartbeat_ms = {}, 600000]. Given: {}",
                            heartbeat_ms, hello_interval_ms);
  }
  return ok_status();  // `engine` is checked by Engine::create, which fills in its defaults
}

// Sends Heartbeats from a thread of its own, on its own socket, so that a long engine step
// (a big prefill on a CPU) never looks like a dead worker to the router. It reports the KV
// statistics the serving loop last published.
class Heartbeater {
 public:
  Heartbeater(zmq::context_t& context, const WorkerServerConfig& config, const std::optional<TransportKey>& key)
      : socket_(context, zmq::socket_type::dealer), group_id_(config.group_id),
        period_(config.heartbeat_ms) {
    connect_dealer(socket_, config, key, wire::heartbeat_identity(config.group_id));
  }
  ~Heartbeater() { stop(); }

  void publish(const wire::KvStats& kv) {
    std::lock_guard lock(mu_);
    kv_ = kv;
  }
  void start() {
    thread_ = std::thread([this] {
      std::unique_lock lock(mu_);
      while (!stopping_) {
        const wire::Heartbeat hb{.group_id = group_id_, .kv = kv_, .unix_ms = wire::unix_ms_now()};
        lock.unlock();
        const std::string bytes = wire::encode(hb);
        try {
          (void)socket_.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
        } catch (const zmq::error_t& e) {
          spdlog::warn("worker {}: heartbeat not sent: {}", group_id_, e.what());
        }
        lock.lock();
        wake_.wait_for(lock, std::chrono::milliseconds(period_), [&] { return stopping_; });
      }
    });
  }
  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
    socket_.close();
  }

 private:
  zmq::socket_t socket_;  // used by the thread only, after start()
  std::string group_id_;
  int period_;
  std::mutex mu_;
  std::condition_variable wake_;
  wire::KvStats kv_;
  bool stopping_ = false;
  std::thread thread_;
};

struct WorkerServer::Loop {
  zmq::context_t context{1};
  zmq::socket_t socket{context, zmq::socket_type::dealer};
  std::optional<TransportKey> key;  // from config.transport_key_file
  std::optional<SocketMonitor> handshakes;  // on `socket`: the router refusing our key
  std::unique_ptr<Heartbeater> heartbeater;
  wire::Hello hello;
  std::vector<wire::TokenOutput> refused;  // answered with the next StepOutputs, at once
  bool need_step = false;                  // an abort is reported by the next step
  Clock::time_point last_heartbeat;
  Clock::time_point last_hello;
  bool send_blocked_logged = false;

  // Never blocks: with no router connected for a long time the queue fills and messages are
  // dropped (the router fails the group's requests after its heartbeat timeout anyway).
  void send(const wire::Message& message) {
    const std::string bytes = wire::encode(message);
    if (socket.send(zmq::buffer(bytes), zmq::send_flags::dontwait)) {
      send_blocked_logged = false;
    } else if (!send_blocked_logged) {
      spdlog::warn("worker {}: the router is not taking messages; dropping {} messages until it does",
                   hello.group_id, wire::message_type_name(wire::message_type(message)));
      send_blocked_logged = true;
    }
  }
};

wire::KvStats WorkerServer::kv_stats() const {
  const SchedulerStats s = engine_->stats();
  return {.total_blocks = s.blocks.total, .free_blocks = s.blocks.reclaimable(),
          .cached_blocks = s.blocks.cached, .num_running = s.num_running, .num_waiting = s.num_waiting,
          .num_preemptions = s.num_preemptions, .prefix_cache_queries = s.prefix_cache_queries,
          .prefix_cache_hits = s.prefix_cache_hits, .prefix_cache_evictions = s.prefix_cache_evictions,
          .spec_verifications = s.spec_verifications, .spec_draft_tokens = s.spec_draft_tokens,
          .spec_accepted_tokens = s.spec_accepted_tokens};
}

// Connect first: a wrong endpoint fails before the (possibly long) warm-up. Nothing is
// sent until Hello, so the router sees the group only once it is ready.
static Status connect_to_router(zmq::socket_t& socket, const WorkerServerConfig& config,
                                const std::optional<TransportKey>& key) {
  try {
    connect_dealer(socket, config, key, config.group_id);
  } catch (const zmq::error_t& e) {
    return invalid_argument("worker {}: cannot connect to the router at `{}`: {}", config.group_id,
                            config.router_endpoint, e.what());
  }
  spdlog::info("worker {}: connecting to the router at {}", config.group_id, config.router_endpoint);
  return ok_status();
}

Status WorkerServer::run(const LoadedModel& model, const WorkerServerConfig& config,
                         std::atomic<bool>& stop, ParallelContext* parallel, const LoadedModel* draft) {
  STRATA_RETURN_IF_ERROR(config.validate());
  config_ = &config;
  step_ = 0;
  Loop loop;
  if (!config.transport_key_file.empty()) {
    STRATA_ASSIGN_OR_RETURN(loop.key, load_transport_key(config.transport_key_file));
  }
  loop.handshakes.emplace(loop.context, loop.socket, kHandshakeFailedEvents, "strata-worker-handshakes");
  STRATA_RETURN_IF_ERROR(connect_to_router(loop.socket, config, loop.key));
  STRATA_ASSIGN_OR_RETURN(engine_, Engine::create(model, config.engine, parallel, draft));
  const auto warm_start = Clock::now();
  STRATA_RETURN_IF_ERROR(warm_up(*engine_, model));
  if (!config.step_log.empty()) {
    STRATA_ASSIGN_OR_RETURN(step_log_, StepLog::open(config.step_log));
  }
  spdlog::info("worker {}: model {} warmed up in {:.2f} s; {} {} KV blocks of {} tokens, context {}",
               config.group_id, model.config.name,
               std::chrono::duration<double>(Clock::now() - warm_start).count(),
               engine_->num_kv_blocks(), dtype_name(engine_->kv_cache_dtype()),
               engine_->config().scheduler.block_size, engine_->config().scheduler.max_model_len);
  loop.hello = hello(model, parallel);
  Status status;
  try {
    loop.heartbeater = std::make_unique<Heartbeater>(loop.context, config, loop.key);
    loop.heartbeater->publish(kv_stats());
    status = serve(loop, stop);
  } catch (const zmq::error_t& e) {
    // SIGTERM can interrupt a send or receive as well as the poll: then the loop is done.
    if (e.num() != EINTR || !stop.load()) {
      status = internal_error("worker {}: serving loop failed: {}", config.group_id, e.what());
    }
  } catch (const std::exception& e) {
    status = internal_error("worker {}: serving loop failed: {}", config.group_id, e.what());
  }
  leave(loop);
  engine_.reset();
  spdlog::info("worker {}: stopped after {} steps", config.group_id, step_);
  return status;
}

wire::Hello WorkerServer::hello(const LoadedModel& model, const ParallelContext* parallel) const {
  return {.group_id = config_->group_id,
          .model_name = config_->model_name.empty() ? model.config.name : config_->model_name,
          .instance_id = random_instance_id(),
          .max_model_len = engine_->config().scheduler.max_model_len,
          .vocab_size = model.config.vocab_size,
          .block_size = engine_->config().scheduler.block_size,
          .total_blocks = engine_->num_kv_blocks(),
          .ready = true,
          .tp = parallel != nullptr ? parallel->topology.tp : 1,
          .pp = parallel != nullptr ? parallel->topology.pp : 1};
}

// Leaving: fail what is still in flight so the router can retry it elsewhere at once, and
// say we are no longer ready. A bounded linger lets these last messages out.
void WorkerServer::leave(Loop& loop) {
  const WorkerServerConfig& config = *config_;
  try {
    wire::StepOutputs last{.group_id = config.group_id, .step = step_, .outputs = {}, .kv = kv_stats()};
    for (const RequestId id : engine_->unfinished_ids()) {
      last.outputs.push_back({.id = id,
                              .token_ids = {},
                              .logprobs = {},
                              .top_logprobs = {},
                              .finish_reason = std::string(wire::kFinishError),
                              .error = fmt::format("worker group {} is shutting down; retry the request",
                                                   config.group_id)});
    }
    if (loop.heartbeater) loop.heartbeater->stop();
    if (!last.outputs.empty()) loop.send(last);
    loop.hello.ready = false;
    loop.send(loop.hello);
    loop.socket.set(zmq::sockopt::linger, std::min(config.heartbeat_ms, 500));
    loop.handshakes.reset();
    loop.socket.close();
  } catch (const std::exception& e) {
    spdlog::warn("worker {}: closing the socket: {}", config.group_id, e.what());
  }
}

Status WorkerServer::serve(Loop& loop, std::atomic<bool>& stop) {
  const auto heartbeat = std::chrono::milliseconds(config_->heartbeat_ms);
  const auto hello_interval = std::chrono::milliseconds(config_->hello_interval_ms);
  loop.send(loop.hello);
  loop.heartbeater->start();
  loop.last_heartbeat = loop.last_hello = Clock::now();
  bool shutdown = false;
  while (!shutdown && !stop.load(std::memory_order_relaxed)) {
    // Poll without waiting while there is work; otherwise until the next heartbeat is due.
    const bool busy = engine_->has_unfinished() || loop.need_step;
    const auto until_heartbeat = std::chrono::duration_cast<std::chrono::milliseconds>(
        loop.last_heartbeat + heartbeat - Clock::now());
    const auto timeout = busy ? std::chrono::milliseconds(0)
                              : std::clamp(until_heartbeat, std::chrono::milliseconds(0), heartbeat);
    zmq::pollitem_t items[] = {{loop.socket.handle(), 0, ZMQ_POLLIN, 0}, loop.handshakes->pollitem()};
    try {
      zmq::poll(items, 2, timeout);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;  // a signal: re-check `stop`
      throw;
    }
    if ((items[1].revents & ZMQ_POLLIN) && !loop.handshakes->read_events().empty()) {
      return invalid_argument(
          "worker {}: the router at {} refused the connection's handshake: it does not hold this worker's "
          "transport key (here: {}); give the router and every worker the same --transport-key-file",
          config_->group_id, config_->router_endpoint,
          config_->transport_key_file.empty() ? "none" : config_->transport_key_file);
    }
    // Everything queued since the last step, in arrival order.
    while (!shutdown) {
      zmq::message_t frame;
      if (!loop.socket.recv(frame, zmq::recv_flags::dontwait)) break;
      StatusOr<wire::Message> message = wire::decode(frame.to_string_view());
      if (!message.ok()) {
        spdlog::warn("worker {}: ignoring a message from the router: {}", config_->group_id,
                     message.status().message());
        continue;
      }
      handle(loop, std::move(message).value(), shutdown);
    }
    if (shutdown) break;
    if (engine_->has_unfinished() || loop.need_step || !loop.refused.empty()) run_step(loop);

    const auto now = Clock::now();
    if (now - loop.last_heartbeat >= heartbeat) {
      loop.heartbeater->publish(kv_stats());
      loop.last_heartbeat = now;
    }
    if (now - loop.last_hello >= hello_interval) {
      loop.hello.total_blocks = engine_->num_kv_blocks();
      loop.send(loop.hello);
      loop.last_hello = now;
    }
  }
  return ok_status();
}

void WorkerServer::handle(Loop& loop, wire::Message message, bool& shutdown) {
  if (auto* add = std::get_if<wire::AddRequests>(&message)) {
    for (wire::WireRequest& r : add->requests) {
      const uint64_t id = r.id;
      const auto num_prompt_tokens = static_cast<int32_t>(r.prompt_ids.size());
      Status status = engine_->add_request(
          Request{.id = id, .prompt_ids = std::move(r.prompt_ids), .sampling = std::move(r.sampling)});
      if (!status.ok()) {
        spdlog::info("worker {}: refused request {}: {}", config_->group_id, id, status.message());
        loop.refused.push_back({.id = id,
                                .token_ids = {},
                                .logprobs = {},
                                .top_logprobs = {},
                                .finish_reason = std::string(wire::kFinishError),
                                .error = status.message(),
                                .num_prompt_tokens = num_prompt_tokens,
                                .num_output_tokens = 0});
      }
    }
  } else if (auto* abort = std::get_if<wire::Abort>(&message)) {
    for (uint64_t id : abort->ids) {
      if (engine_->abort(id)) loop.need_step = true;
    }
  } else if (auto* bye = std::get_if<wire::Shutdown>(&message)) {
    spdlog::info("worker {}: shutdown requested by the router{}{}", config_->group_id,
                 bye->reason.empty() ? "" : ": ", bye->reason);
    shutdown = true;
  } else {
    spdlog::warn("worker {}: ignoring a {} message (only the router's messages are expected)",
                 config_->group_id, wire::message_type_name(wire::message_type(message)));
  }
}

void WorkerServer::run_step(Loop& loop) {
  wire::StepOutputs out;
  out.group_id = config_->group_id;
  out.step = step_;
  out.outputs.swap(loop.refused);
  if (engine_->has_unfinished() || loop.need_step) {
    const std::vector<SequenceOutput> outputs = engine_->step();
    loop.need_step = false;
    out.step = ++step_;
    const EngineStepStats& stats = engine_->last_step();
    if (step_log_) step_log_->record(stats, had_work_);
    had_work_ = engine_->has_unfinished();
    out.step_seconds = stats.seconds;
    out.num_decode_tokens = stats.num_decode_tokens;
    out.num_prefill_tokens = stats.num_prefill_tokens;
    out.num_batched_tokens = stats.num_decode_tokens + stats.num_prefill_tokens;
    for (const SequenceOutput& o : outputs) out.outputs.push_back(to_wire(o));
  }
  out.kv = kv_stats();
  loop.heartbeater->publish(out.kv);
  if (out.outputs.empty()) return;
  loop.send(out);
}

}  // namespace strata
