// The Dispatcher's handling of what worker groups send (Hello, StepOutputs, Heartbeats)
// and of their liveness (probes after a disconnect). See router/dispatcher.h.
#include <algorithm>

#include <fmt/format.h>

#include "router/dispatcher_state.h"
#include "router/hello_check.h"

namespace strata::router {

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

void Dispatcher::State::mark_dead(Group& group, const std::string& message, std::vector<Delivery>& deliveries) {
  group.info.alive = false;
  ++group.info.num_deaths;
  spdlog::warn("dispatcher: marking worker group {} dead and failing its {} requests: {}",
               group.info.group_id, group.in_flight.size(), message);
  fail_group(group, message, deliveries);
}

// Sends `probe` (which the peer ignores) to `id`; false once that peer's connection is gone.
static bool routes(zmq::socket_t& socket, const std::string& id, const std::string& probe) {
  try {
    if (socket.send(zmq::buffer(id), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      socket.send(zmq::buffer(probe), zmq::send_flags::dontwait);
    }
    return true;  // routed (or only busy)
  } catch (const zmq::error_t& e) {
    return e.num() != EHOSTUNREACH;
  }
}

void Dispatcher::State::probe_groups(std::vector<Delivery>& deliveries) {
  std::vector<std::pair<std::string, int>> targets;  // group id, its number of ranks
  {
    std::lock_guard lock(mu);
    probe_ranks_pending = false;
    for (const auto& [id, group] : groups) {
      if (group.info.alive || group.lost_instance == group.info.instance_id) {
        targets.emplace_back(id, std::max(1, group.info.tp * group.info.pp));
      }
    }
  }
  const std::string probe = wire::encode(wire::Abort{});  // aborts nothing
  for (const auto& [id, ranks] : targets) {
    std::vector<bool> routed(static_cast<size_t>(ranks));
    for (int rank = 0; rank < ranks; ++rank) {
      routed[static_cast<size_t>(rank)] = routes(socket, rank == 0 ? id : wire::rank_identity(id, rank), probe);
    }
    std::lock_guard lock(mu);
    auto it = groups.find(id);
    if (it != groups.end()) apply_probe(it->second, routed, deliveries);
  }
}

void Dispatcher::State::apply_probe(Group& group, const std::vector<bool>& routed, std::vector<Delivery>& deliveries) {
  const std::string& id = group.info.group_id;
  const auto lost = [&](int rank) { return !routed[static_cast<size_t>(rank)] && group.present_ranks.count(rank) > 0; };
  if (!group.info.alive) {
    // Lost a rank: revivable once every rank it had routes again (its connection had only
    // dropped for a moment; a dead rank's group is ended by mpirun and restarted instead).
    bool back = routed[0];
    for (int rank = 1; rank < static_cast<int>(routed.size()); ++rank) back = back && !lost(rank);
    if (back && group.lost_instance == group.info.instance_id) {
      spdlog::info("dispatcher: every rank of worker group {} is connected again", id);
      group.lost_instance = 0;
      group.info.alive = true;
      group.last_seen = Clock::now();
    }
    return;
  }
  if (!routed[0]) {
    return mark_dead(group, fmt::format("worker group {} failed: its connection to the router closed (the "
                                        "process exited or was killed); retry the request", id),
                     deliveries);
  }
  for (int rank = 1; rank < static_cast<int>(routed.size()); ++rank) {
    if (lost(rank)) {
      group.lost_instance = group.info.instance_id;  // its driver is blocked, not dead: see Group
      return mark_dead(group, fmt::format("worker group {} failed: its rank {} is gone (the process exited or "
                                          "was killed); retry the request", id, rank),
                       deliveries);
    }
    if (routed[static_cast<size_t>(rank)]) group.present_ranks.insert(rank);
  }
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
  if (!is_new && hello.instance_id == group.lost_instance) {  // lost a rank: are they all back?
    probe_ranks_pending = true;
    return;
  }
  if (is_new || info.instance_id != hello.instance_id) group.present_ranks.clear();
  if (hello.tp * hello.pp > 1) probe_ranks_pending = true;
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
  if (heartbeat != nullptr && identity != wire::heartbeat_identity(heartbeat->group_id) && identity != heartbeat->group_id) {
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
  if (group.lost_instance != 0 && group.lost_instance == group.info.instance_id) return;  // see apply_hello
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
