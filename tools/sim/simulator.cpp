#include "tools/sim/simulator.h"

#include <algorithm>
#include <limits>
#include <memory>

#include <fmt/format.h>

namespace strata::sim {
namespace {

constexpr double kNever = std::numeric_limits<double>::infinity();
constexpr int32_t kForcedToken = 1;  // any id: the worker's stop ids are empty here

struct Group {
  std::string id;
  std::unique_ptr<Scheduler> scheduler;
  bool busy = false;
  double step_end = kNever;
  StepPlan plan;
};

class Simulation {
 public:
  Simulation(const SimConfig& config, const SimPolicy& policy, const std::vector<SimRequest>& requests)
      : config_(config), policy_(policy), requests_(requests), results_(requests.size()) {
    for (int g = 0; g < config.num_groups; ++g) {
      groups_.push_back(Group{.id = fmt::format("g{}", g),
                              .scheduler = std::make_unique<Scheduler>(config.worker, config.blocks_per_group)});
    }
    router_ = std::make_unique<router::RouterScheduler>(policy.router, predictor_);
  }

  SimResult run() {
    size_t next_arrival = 0;
    double now = requests_.empty() ? 0 : requests_.front().arrival_s;
    const double start = now;
    double last_finish = now;
    while (true) {
      double next = next_arrival < requests_.size() ? requests_[next_arrival].arrival_s : kNever;
      for (const Group& g : groups_) next = std::min(next, g.step_end);
      if (next == kNever) break;
      integrate_kv(now, next);
      now = next;
      for (Group& g : groups_) {
        if (g.busy && g.step_end <= now) last_finish = std::max(last_finish, finish_step(g, now));
      }
      while (next_arrival < requests_.size() && requests_[next_arrival].arrival_s <= now) arrive(next_arrival++, now);
      route(now);
      for (Group& g : groups_) {
        if (!g.busy) start_step(g, now);
      }
    }
    SimResult out;
    out.requests = std::move(results_);
    out.duration_s = last_finish - start;
    for (const Group& g : groups_) {
      const SchedulerStats s = g.scheduler->stats();
      out.preemptions += s.num_preemptions;
      out.prefix_cache_queries += s.prefix_cache_queries;
      out.prefix_cache_hits += s.prefix_cache_hits;
    }
    const double group_time = kv_time_ * static_cast<double>(groups_.size());
    out.kv_utilization_mean = kv_time_ > 0 ? kv_integral_ / group_time : 0;
    out.kv_utilization_max = kv_max_;
    out.steps = steps_;
    out.busy_fraction = group_time > 0 ? busy_time_ / group_time : 0;
    return out;
  }

 private:
  void integrate_kv(double from, double to) {
    if (!(to > from)) return;
    const double dt = to - from;
    for (const Group& g : groups_) {
      const KvBlockStats b = g.scheduler->stats().blocks;
      const double used = b.total > 0 ? static_cast<double>(b.total - b.reclaimable()) / static_cast<double>(b.total) : 0;
      kv_integral_ += used * dt;
      kv_max_ = std::max(kv_max_, used);
      if (g.busy) busy_time_ += dt;
    }
    kv_time_ += dt;
  }

  Request worker_request(size_t i) const {
    const SimRequest& r = requests_[i];
    Request w{.id = i + 1};
    w.prompt_ids = r.prompt_ids;
    if (w.prompt_ids.empty()) {
      // Distinct from every other prompt in its first token, so nothing is a cache hit.
      w.prompt_ids.assign(static_cast<size_t>(r.prompt_tokens), kForcedToken);
      w.prompt_ids[0] = static_cast<int32_t>(i % (1u << 30)) + 2;
    }
    w.sampling.temperature = 0;
    w.sampling.ignore_eos = true;
    w.sampling.max_tokens = r.max_tokens;
    if (r.output_tokens < r.max_tokens) w.sampling.stop_after_tokens = r.output_tokens;
    return w;
  }

  void send(size_t i, Group& g) {
    if (Status st = g.scheduler->add(worker_request(i)); !st.ok()) {
      results_[i].failure = "rejected: " + st.message();
      router_->on_finished(i + 1, 0, false, /*completed=*/false);
    }
  }

  // Every request takes the router's one path: its scheduler's queue (router/scheduling/).
  void arrive(size_t i, double now) {
    const SimRequest& r = requests_[i];
    const router::SchedulerRequest sr{
        .id = i + 1,
        .features = {.prompt_tokens = r.prompt_tokens, .max_tokens = r.max_tokens, .route = router::Route::kCompletions},
        .prefix_hashes = chain_block_hashes(r.prompt_ids, router::kPrefixIndexBlockTokens)};
    if (Status st = router_->enqueue(sr, now); !st.ok()) results_[i].failure = "429";
  }

  void route(double now) {
    std::vector<router::GroupSnapshot> snapshots;
    for (const Group& g : groups_) {
      const SchedulerStats s = g.scheduler->stats();
      snapshots.push_back({.group_id = g.id, .available = true, .total_blocks = s.blocks.total,
                           .free_blocks = s.blocks.reclaimable(), .block_size = config_.worker.block_size,
                           .num_preemptions = s.num_preemptions});
    }
    const router::ScheduleDecisions d = router_->schedule(now, snapshots);
    for (const router::Dispatch& dispatch : d.dispatches) {
      for (Group& g : groups_) {
        if (g.id == dispatch.group_id) send(dispatch.id - 1, g);
      }
    }
    for (const router::Refusal& r : d.refused) results_[r.id - 1].failure = "rejected: " + r.message;
    for (uint64_t id : d.timed_out) {
      results_[id - 1].failure = "timeout";
      for (Group& g : groups_) g.scheduler->abort(id);
    }
  }

  void start_step(Group& g, double now) {
    if (!g.scheduler->has_unfinished()) return;
    g.plan = g.scheduler->schedule();
    if (g.plan.empty()) return;
    StepShape shape{.prefill_tokens = g.plan.num_prefill_tokens, .decode_sequences = g.plan.num_decode_tokens};
    for (const ScheduledSequence& s : g.plan.sequences) {
      shape.context_tokens += s.num_computed_tokens + static_cast<int64_t>(s.num_new_tokens);
    }
    g.busy = true;
    g.step_end = now + config_.cost.step_seconds(shape);
    ++steps_;
  }

  // Returns the time if a request finished in this step, else -inf.
  double finish_step(Group& g, double now) {
    g.busy = false;
    g.step_end = kNever;
    StepResult result;
    for (const ScheduledSequence& s : g.plan.sequences) {
      if (s.sample) result.sampled[s.id] = {SampledToken{.id = kForcedToken}};
    }
    double finished_at = -kNever;
    for (const SequenceOutput& o : g.scheduler->update(g.plan, result)) {
      const size_t i = o.id - 1;
      SimRequestResult& r = results_[i];
      const double since_arrival = now - requests_[i].arrival_s;
      if (!o.new_tokens.empty()) {
        if (r.output_tokens == 0) r.ttft_s = since_arrival;
        r.output_tokens += static_cast<int32_t>(o.new_tokens.size());
        router_->on_tokens(o.id, static_cast<int64_t>(o.new_tokens.size()));
      }
      if (!o.finished()) continue;
      const bool completed = o.finish_reason == FinishReason::kStop || o.finish_reason == FinishReason::kLength;
      r.ok = completed && r.failure.empty();
      r.e2e_s = since_arrival;
      finished_at = now;
      router_->on_finished(o.id, o.num_output_tokens, false, completed);
    }
    return finished_at;
  }

  const SimConfig& config_;
  const SimPolicy& policy_;
  const std::vector<SimRequest>& requests_;
  std::vector<SimRequestResult> results_;
  std::vector<Group> groups_;
  router::HistogramPredictor predictor_;
  std::unique_ptr<router::RouterScheduler> router_;
  double kv_integral_ = 0, kv_time_ = 0, kv_max_ = 0, busy_time_ = 0;
  int64_t steps_ = 0;
};

}  // namespace

StatusOr<SimPolicy> parse_sim_policy(const std::string& name, const router::RouterSchedulerConfig& base) {
  const size_t plus = name.find('+');
  const std::string admission_name = name.substr(0, plus);
  const std::string order_name = plus == std::string::npos ? "fcfs" : name.substr(plus + 1);
  auto admission = router::parse_admission_policy(admission_name);
  if (!admission.ok()) return invalid_argument("--policy `{}`: {}", name, admission.status().message());
  auto order = router::parse_order_policy(order_name);
  if (!order.ok()) return invalid_argument("--policy `{}`: {}", name, order.status().message());
  SimPolicy p{.name = name, .router = base};
  p.router.admission = *admission;
  p.router.order = *order;
  return p;
}

StatusOr<SimResult> simulate(const SimConfig& config, const SimPolicy& policy,
                             const std::vector<SimRequest>& requests) {
  if (config.num_groups < 1) return out_of_range("--groups must be >= 1, got {}", config.num_groups);
  if (config.blocks_per_group < 1) return out_of_range("each group needs KV blocks, got {}", config.blocks_per_group);
  STRATA_RETURN_IF_ERROR(config.worker.validate());
  for (size_t i = 1; i < requests.size(); ++i) {
    if (requests[i].arrival_s < requests[i - 1].arrival_s) return invalid_argument("simulated requests must be sorted by arrival");
  }
  return Simulation(config, policy, requests).run();
}

}  // namespace strata::sim
