#include "router/scheduling/router_scheduler.h"

#include <algorithm>
#include <string_view>

#include <fmt/format.h>

namespace strata::router {
namespace {

Status queue_full(std::string message) {
  return Status(StatusCode::kResourceExhausted, std::move(message));
}

}  // namespace

RouterScheduler::RouterScheduler(RouterSchedulerConfig config, LengthPredictor& predictor)
    : config_(std::move(config)), predictor_(predictor), quantile_(config_.quantile) {}

double RouterScheduler::predicted_wait_s(int priority, int64_t median_tokens) const {
  if (tokens_per_s_ <= 0) return 0;  // not measured yet: never reject on a guess
  const bool sjf = std::holds_alternative<ShortestPredictedFirst>(config_.order);
  double ahead_tokens = 0;
  for (uint64_t id : waiting_) {
    const Tracked& t = requests_.at(id);
    if (t.request.priority < priority) continue;
    const int64_t median = t.length.median();
    if (sjf && t.request.priority == priority && median > median_tokens) continue;
    ahead_tokens += static_cast<double>(median);
  }
  return ahead_tokens / tokens_per_s_;
}

Status RouterScheduler::check_room(std::span<const SchedulerRequest> choices) const {
  for (size_t i = 0; i < choices.size(); ++i) {
    const uint64_t id = choices[i].id;
    const bool repeated = std::any_of(choices.begin(), choices.begin() + static_cast<ptrdiff_t>(i),
                                      [id](const SchedulerRequest& c) { return c.id == id; });
    if (requests_.contains(id) || repeated) {
      return invalid_argument("request id {} is already queued or running", id);
    }
  }
  const auto n = static_cast<int64_t>(choices.size());
  const auto unfinished = static_cast<int64_t>(num_unfinished());
  if (unfinished + n > config_.max_queue_requests) {
    return queue_full(fmt::format("the queue is full: {} requests unfinished (waiting, running or "
                                  "being answered) + {} given would pass `max_queue_requests` ({}); retry later",
                                  unfinished, n, config_.max_queue_requests));
  }
  int64_t prompt_tokens = 0;
  for (const SchedulerRequest& c : choices) prompt_tokens += c.features.prompt_tokens;
  if (waiting_tokens_ + prompt_tokens > config_.max_queue_tokens) {
    return queue_full(fmt::format("the queue is full: {} prompt tokens waiting + {} given would "
                                  "pass `max_queue_tokens` ({}); retry later",
                                  waiting_tokens_, prompt_tokens, config_.max_queue_tokens));
  }
  if (config_.queue_deadline_s > 0 && !choices.empty()) {
    // The choices share their features: one prediction answers for all of them.
    const SchedulerRequest& first = choices.front();
    const double wait_s = predicted_wait_s(first.priority, predictor_.predict(first.features).median());
    if (wait_s > config_.queue_deadline_s) {
      return queue_full(fmt::format("the predicted wait, {:.1f} s, is past the queue deadline "
                                    "(`queue_deadline_s` is {:.1f} s); retry later",
                                    wait_s, config_.queue_deadline_s));
    }
  }
  return ok_status();
}

Status RouterScheduler::enqueue(const SchedulerRequest& request, double now_s) {
  return enqueue(std::span<const SchedulerRequest>(&request, 1), now_s);
}

Status RouterScheduler::enqueue(std::span<const SchedulerRequest> choices, double now_s) {
  STRATA_RETURN_IF_ERROR(check_room(choices));
  for (const SchedulerRequest& request : choices) {
    Tracked t{.request = request, .length = predictor_.predict(request.features), .arrival_s = now_s};
    const double timeout_s = request.timeout_s > 0 ? request.timeout_s : config_.request_timeout_s;
    t.deadline_s = now_s + timeout_s;
    waiting_.push_back(request.id);
    waiting_tokens_ += request.features.prompt_tokens;
    requests_.emplace(request.id, std::move(t));
  }
  return ok_status();
}

void RouterScheduler::remove_waiting(uint64_t id) {
  const auto it = std::find(waiting_.begin(), waiting_.end(), id);
  if (it == waiting_.end()) return;
  waiting_.erase(it);
  waiting_tokens_ -= requests_.at(id).request.features.prompt_tokens;
}

void RouterScheduler::update_rates(double now_s, std::span<const GroupSnapshot> groups) {
  if (window_start_s_ < 0) {
    window_start_s_ = now_s;
    window_tokens_ = 0;
  } else if (now_s - window_start_s_ >= 1.0) {
    const double rate = static_cast<double>(window_tokens_) / (now_s - window_start_s_);
    tokens_per_s_ = tokens_per_s_ <= 0 ? rate : 0.7 * tokens_per_s_ + 0.3 * rate;
    window_start_s_ = now_s;
    window_tokens_ = 0;
  }
  forget_gone_groups(groups);
  int64_t new_preemptions = 0;
  for (const GroupSnapshot& g : groups) {
    auto [it, inserted] = last_preemptions_.try_emplace(g.group_id, g.num_preemptions);
    // A smaller counter means the worker restarted: count from its new value.
    if (!inserted) new_preemptions += std::max<int64_t>(g.num_preemptions - it->second, 0);
    it->second = g.num_preemptions;
  }
  if (config_.adapt_quantile && new_preemptions > 0) quantile_.update(0, new_preemptions);
}

int64_t RouterScheduler::pending_tokens(const Tracked& t) {
  // The prompt counts until the first token arrives; the answer's predicted median after that.
  const int64_t prefill = t.generated == 0 ? std::max<int64_t>(t.request.features.prompt_tokens - t.matched_tokens, 0) : 0;
  return prefill + t.length.remaining_quantile(0.5, t.generated);
}

int64_t RouterScheduler::matched_tokens(const std::string& group_id, std::span<const BlockHash> hashes) const {
  const auto it = prefix_indexes_.find(group_id);
  return it == prefix_indexes_.end() ? 0 : it->second.matched_blocks(hashes) * kPrefixIndexBlockTokens;
}

void RouterScheduler::forget_gone_groups(std::span<const GroupSnapshot> groups) {
  if (!prefix_aware()) return;
  // A group seen unavailable (gone, or restarting) comes back with a cold index.
  std::erase_if(prefix_indexes_, [&](const auto& entry) {
    return std::none_of(groups.begin(), groups.end(), [&](const GroupSnapshot& g) {
      return g.available && g.group_id == entry.first;
    });
  });
  for (const GroupSnapshot& g : groups) {
    // As many blocks as the group holds, counted at the index's block size.
    if (g.available) prefix_indexes_[g.group_id].set_capacity(g.total_blocks * g.block_size / kPrefixIndexBlockTokens);
  }
}

void RouterScheduler::collect_timeouts(double now_s, ScheduleDecisions& out) {
  std::vector<uint64_t> dropped;
  for (auto& [id, t] : requests_) {
    if (t.timeout_reported || now_s < t.deadline_s) continue;
    t.timeout_reported = true;
    out.timed_out.push_back(id);
    if (!t.running) dropped.push_back(id);
  }
  for (uint64_t id : dropped) {
    remove_waiting(id);
    requests_.erase(id);
  }
  std::sort(out.timed_out.begin(), out.timed_out.end());
}

std::vector<RouterScheduler::GroupLoad> RouterScheduler::group_loads(
    std::span<const GroupSnapshot> groups, double q) const {
  std::vector<GroupLoad> loads;
  std::unordered_map<std::string_view, size_t> index;
  for (const GroupSnapshot& g : groups) {
    if (!g.available) continue;
    index.emplace(g.group_id, loads.size());
    loads.push_back({.group_id = &g.group_id,
                     .kv = GroupKv{.total_blocks = g.total_blocks, .free_blocks = g.free_blocks,
                                   .block_size = g.block_size}});
  }
  // Only `predicted` admission and prefix-aware placement over several groups read the
  // predicted remaining length; it is the costly part of a pass (every enqueue runs one), so
  // the others skip it.
  const bool predicted = std::holds_alternative<Predicted>(config_.admission);
  const bool weigh_load = prefix_aware() && loads.size() > 1;
  for (const auto& [id, t] : requests_) {
    if (!t.running) continue;
    const auto it = index.find(t.group_id);
    if (it == index.end()) continue;
    const int64_t max_left = t.request.features.max_tokens - t.generated;
    if (weigh_load) loads[it->second].pending_tokens += pending_tokens(t);
    loads[it->second].kv.running.push_back(
        KvRequest{.used_tokens = t.request.features.prompt_tokens + t.generated,
                  .max_left_tokens = std::max<int64_t>(max_left, 0),
                  .predicted_left_tokens = predicted ? t.length.remaining_quantile(q, t.generated) : 0});
  }
  return loads;
}

std::optional<std::string> RouterScheduler::refusal(std::span<const GroupLoad> loads,
                                                    const KvRequest& newcomer) const {
  const int64_t headroom = config_.kv_headroom_blocks;
  const GroupKv* largest = nullptr;
  for (const GroupLoad& load : loads) {
    const GroupKv empty{.total_blocks = load.kv.total_blocks, .free_blocks = load.kv.total_blocks,
                        .block_size = load.kv.block_size};
    if (admits(config_.admission, empty, newcomer, headroom)) return std::nullopt;
    if (largest == nullptr || load.kv.total_blocks > largest->total_blocks) largest = &load.kv;
  }
  if (largest == nullptr) return std::nullopt;  // no group available: wait for one
  // What each policy needs room for.
  int64_t tokens = newcomer.used_tokens;
  const char* what = "the prompt";
  if (std::holds_alternative<ReserveMax>(config_.admission)) {
    tokens += newcomer.max_left_tokens;
    what = "prompt + max_tokens";
  } else if (std::holds_alternative<Predicted>(config_.admission)) {
    tokens += newcomer.predicted_left_tokens;
    what = "prompt + predicted answer";
  }
  return fmt::format("the request needs {} KV blocks ({} tokens: {}, under `admission_policy` "
                     "{}) but the largest worker group holds {}, {} of them kept spare "
                     "(`kv_headroom_blocks`); shorten the prompt or `max_tokens`, or give the "
                     "workers a larger KV cache",
                     blocks_for(tokens, largest->block_size), tokens, what,
                     admission_policy_name(config_.admission), largest->total_blocks, headroom);
}

void RouterScheduler::place_waiting(double now_s, double q, std::vector<GroupLoad>& loads,
                                    ScheduleDecisions& out) {
  std::vector<QueueEntry> entries;
  entries.reserve(waiting_.size());
  for (uint64_t id : waiting_) {
    const Tracked& t = requests_.at(id);
    entries.push_back({.priority = t.request.priority, .arrival_s = t.arrival_s,
                       .predicted_median_tokens = t.length.median()});
  }
  std::vector<uint64_t> done;  // placed or refused
  std::vector<size_t> candidates;
  std::vector<PlacementCandidate> placement;
  for (size_t k : order_queue(config_.order, entries, now_s, config_.max_wait_s)) {
    Tracked& t = requests_.at(waiting_[k]);
    const RequestFeatures& f = t.request.features;
    const KvRequest newcomer{.used_tokens = f.prompt_tokens, .max_left_tokens = f.max_tokens,
                             .predicted_left_tokens = t.length.quantile(q)};
    candidates.clear();
    placement.clear();
    for (size_t g = 0; g < loads.size(); ++g) {
      if (!admits(config_.admission, loads[g].kv, newcomer, config_.kv_headroom_blocks)) continue;
      candidates.push_back(g);
      placement.push_back({.num_in_flight = static_cast<int64_t>(loads[g].kv.running.size()),
                           .free_blocks = loads[g].kv.free_blocks,
                           .matched_tokens = matched_tokens(*loads[g].group_id, t.request.prefix_hashes),
                           .pending_tokens = loads[g].pending_tokens});
    }
    const auto choice = pick_group(placement, config_.placement);
    if (!choice) {
      if (auto why = refusal(loads, newcomer)) {
        out.refused.push_back({.id = waiting_[k], .message = std::move(*why)});
        done.push_back(waiting_[k]);
        continue;
      }
      if (is_aged(entries[k], now_s, config_.max_wait_s)) break;  // keep the room for it
      continue;
    }
    GroupLoad& load = loads[candidates[*choice]];
    load.kv.running.push_back(newcomer);
    t.running = true;
    t.group_id = *load.group_id;
    t.matched_tokens = placement[*choice].matched_tokens;
    if (prefix_aware() && loads.size() > 1) load.pending_tokens += pending_tokens(t);
    if (auto index = prefix_indexes_.find(t.group_id); index != prefix_indexes_.end()) {
      index->second.insert(t.request.prefix_hashes);
    }
    out.dispatches.push_back({.id = waiting_[k], .group_id = t.group_id});
    done.push_back(waiting_[k]);
  }
  for (uint64_t id : done) remove_waiting(id);
  for (const Refusal& r : out.refused) requests_.erase(r.id);
}

ScheduleDecisions RouterScheduler::schedule(double now_s, std::span<const GroupSnapshot> groups) {
  ScheduleDecisions out;
  update_rates(now_s, groups);
  collect_timeouts(now_s, out);
  if (waiting_.empty()) return out;
  const double q = quantile_.value();
  std::vector<GroupLoad> loads = group_loads(groups, q);
  if (loads.empty()) return out;
  place_waiting(now_s, q, loads, out);
  return out;
}

void RouterScheduler::on_tokens(uint64_t id, int64_t n) {
  window_tokens_ += n;
  const auto it = requests_.find(id);
  if (it != requests_.end() && it->second.running) it->second.generated += n;
}

std::optional<int64_t> RouterScheduler::on_finished(uint64_t id, int64_t output_tokens,
                                                    bool preempted, bool completed, bool release) {
  const auto it = requests_.find(id);
  if (it == requests_.end()) return std::nullopt;
  if (!release && !it->second.released) delivering_.insert(id);
  std::optional<int64_t> predicted;
  if (completed && !it->second.timeout_reported) {
    predictor_.observe(it->second.request.features, output_tokens);
    predicted = it->second.length.median();
  }
  if (config_.adapt_quantile) quantile_.update(1, preempted ? 1 : 0);
  remove_waiting(id);
  requests_.erase(it);
  return predicted;
}

void RouterScheduler::release(uint64_t id) {
  if (delivering_.erase(id) > 0) return;
  const auto it = requests_.find(id);
  if (it != requests_.end()) it->second.released = true;
}

void RouterScheduler::cancel(uint64_t id) {
  const auto it = requests_.find(id);
  if (it == requests_.end() || it->second.running) return;
  remove_waiting(id);
  requests_.erase(it);
}

}  // namespace strata::router
