#include "router/scheduling/router_scheduler.h"

#include <algorithm>

#include <fmt/format.h>

namespace strata::router {
namespace {

Status queue_full(std::string message) {
  return Status(StatusCode::kResourceExhausted, std::move(message));
}

}  // namespace

RouterScheduler::RouterScheduler(RouterSchedulerConfig config, LengthPredictor& predictor)
    : config_(std::move(config)),
      predictor_(predictor),
      quantile_(config_.quantile),
      placement_(config_.seed) {}

double RouterScheduler::predicted_wait_s(const Tracked& newcomer) const {
  if (tokens_per_s_ <= 0) return 0;  // not measured yet: never reject on a guess
  const bool sjf = std::holds_alternative<ShortestPredictedFirst>(config_.order);
  const int64_t own = newcomer.length.median();
  double ahead_tokens = 0;
  for (uint64_t id : waiting_) {
    const Tracked& t = requests_.at(id);
    if (t.request.priority < newcomer.request.priority) continue;
    const int64_t median = t.length.median();
    if (sjf && t.request.priority == newcomer.request.priority && median > own) continue;
    ahead_tokens += static_cast<double>(median);
  }
  return ahead_tokens / tokens_per_s_;
}

Status RouterScheduler::enqueue(const SchedulerRequest& request, double now_s) {
  if (requests_.contains(request.id)) {
    return invalid_argument("request id {} is already queued or running", request.id);
  }
  const int64_t prompt = request.features.prompt_tokens;
  if (static_cast<int64_t>(waiting_.size()) >= config_.max_queue_requests) {
    return queue_full(fmt::format("the queue is full: {} requests waiting (`max_queue_requests` "
                                  "is {}); retry later", waiting_.size(), config_.max_queue_requests));
  }
  if (waiting_tokens_ + prompt > config_.max_queue_tokens) {
    return queue_full(fmt::format("the queue is full: {} prompt tokens waiting + {} given would "
                                  "pass `max_queue_tokens` ({}); retry later",
                                  waiting_tokens_, prompt, config_.max_queue_tokens));
  }
  Tracked t{.request = request, .length = predictor_.predict(request.features), .arrival_s = now_s};
  const double timeout_s = request.timeout_s > 0 ? request.timeout_s : config_.request_timeout_s;
  t.deadline_s = now_s + timeout_s;
  if (config_.queue_deadline_s > 0) {
    const double wait_s = predicted_wait_s(t);
    if (wait_s > config_.queue_deadline_s) {
      return queue_full(fmt::format("the predicted wait, {:.1f} s, is past the queue deadline "
                                    "(`queue_deadline_s` is {:.1f} s); retry later",
                                    wait_s, config_.queue_deadline_s));
    }
  }
  waiting_.push_back(request.id);
  waiting_tokens_ += prompt;
  requests_.emplace(request.id, std::move(t));
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
  int64_t new_preemptions = 0;
  for (const GroupSnapshot& g : groups) {
    auto [it, inserted] = last_preemptions_.try_emplace(g.group_id, g.num_preemptions);
    // A smaller counter means the worker restarted: count from its new value.
    if (!inserted) new_preemptions += std::max<int64_t>(g.num_preemptions - it->second, 0);
    it->second = g.num_preemptions;
  }
  if (config_.adapt_quantile && new_preemptions > 0) quantile_.update(0, new_preemptions);
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

ScheduleDecisions RouterScheduler::schedule(double now_s, std::span<const GroupSnapshot> groups) {
  ScheduleDecisions out;
  update_rates(now_s, groups);
  collect_timeouts(now_s, out);

  // What the router has placed in each available group.
  const double q = quantile_.value();
  std::vector<GroupKv> kv;
  std::vector<double> outstanding;
  std::unordered_map<std::string, size_t> index;
  std::vector<const std::string*> names;
  for (const GroupSnapshot& g : groups) {
    if (!g.available) continue;
    index.emplace(g.group_id, kv.size());
    names.push_back(&g.group_id);
    kv.push_back(GroupKv{.total_blocks = g.total_blocks, .free_blocks = g.free_blocks,
                         .block_size = g.block_size});
    outstanding.push_back(0);
  }
  for (const auto& [id, t] : requests_) {
    if (!t.running) continue;
    const auto it = index.find(t.group_id);
    if (it == index.end()) continue;
    const int64_t max_left = t.request.features.max_tokens - t.generated;
    kv[it->second].running.push_back(
        KvRequest{.used_tokens = t.request.features.prompt_tokens + t.generated,
                  .max_left_tokens = std::max<int64_t>(max_left, 0),
                  .predicted_left_tokens = t.length.remaining_quantile(q, t.generated)});
    const int64_t prefill_left = t.generated == 0 ? t.request.features.prompt_tokens : 0;
    outstanding[it->second] +=
        static_cast<double>(prefill_left + t.length.remaining_quantile(0.5, t.generated));
  }
  if (kv.empty() || waiting_.empty()) return out;

  std::vector<QueueEntry> entries;
  entries.reserve(waiting_.size());
  for (uint64_t id : waiting_) {
    const Tracked& t = requests_.at(id);
    entries.push_back({.priority = t.request.priority, .arrival_s = t.arrival_s,
                       .predicted_median_tokens = t.length.median()});
  }
  std::vector<uint64_t> placed;
  std::vector<size_t> candidates;
  std::vector<double> loads;
  for (size_t k : order_queue(config_.order, entries, now_s, config_.max_wait_s)) {
    Tracked& t = requests_.at(waiting_[k]);
    const RequestFeatures& f = t.request.features;
    const KvRequest newcomer{.used_tokens = f.prompt_tokens, .max_left_tokens = f.max_tokens,
                             .predicted_left_tokens = t.length.quantile(q)};
    candidates.clear();
    loads.clear();
    for (size_t g = 0; g < kv.size(); ++g) {
      if (!admits(config_.admission, kv[g], newcomer, config_.kv_headroom_blocks)) continue;
      candidates.push_back(g);
      loads.push_back(outstanding[g]);
    }
    const auto choice = placement_.pick(loads);
    if (!choice) {
      if (is_aged(entries[k], now_s, config_.max_wait_s)) break;  // keep the room for it
      continue;
    }
    const size_t g = candidates[*choice];
    kv[g].running.push_back(newcomer);
    outstanding[g] += static_cast<double>(f.prompt_tokens + t.length.median());
    t.running = true;
    t.group_id = *names[g];
    out.dispatches.push_back({.id = waiting_[k], .group_id = t.group_id});
    placed.push_back(waiting_[k]);
  }
  for (uint64_t id : placed) remove_waiting(id);
  return out;
}

void RouterScheduler::on_tokens(uint64_t id, int64_t n) {
  window_tokens_ += n;
  const auto it = requests_.find(id);
  if (it != requests_.end() && it->second.running) it->second.generated += n;
}

std::optional<int64_t> RouterScheduler::on_finished(uint64_t id, int64_t output_tokens,
                                                    bool preempted, bool completed) {
  const auto it = requests_.find(id);
  if (it == requests_.end()) return std::nullopt;
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

void RouterScheduler::cancel(uint64_t id) {
  const auto it = requests_.find(id);
  if (it == requests_.end() || it->second.running) return;
  remove_waiting(id);
  requests_.erase(it);
}

}  // namespace strata::router
