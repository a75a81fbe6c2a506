#include "router/scheduling_loop.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <memory>

namespace strata::router {
namespace {

wire::TokenOutput finished_output(uint64_t id, std::string_view finish_reason,
                                  std::string error = "") {
  wire::TokenOutput out;
  out.id = id;
  out.finish_reason = std::string(finish_reason);
  out.error = std::move(error);
  return out;
}

GroupSnapshot snapshot_of(const GroupInfo& g) {
  return GroupSnapshot{.group_id = g.group_id,
                       .available = g.alive && g.ready,
                       .total_blocks = g.kv.total_blocks,
                       .free_blocks = g.kv.free_blocks,
                       .block_size = g.block_size,
                       .num_preemptions = g.kv.num_preemptions};
}

void deliver(std::vector<std::pair<OutputCallback, wire::TokenOutput>>& ended) {
  for (auto& [callback, output] : ended) {
    if (callback) callback(output);
  }
  ended.clear();
}

}  // namespace

SchedulingLoop::SchedulingLoop(RouterSchedulerConfig config, Dispatcher& dispatcher,
                               SchedulingLoopOptions options)
    : dispatcher_(dispatcher), options_(std::move(options)), scheduler_(std::move(config), predictor_) {}

SchedulingLoop::~SchedulingLoop() { stop(); }

Status SchedulingLoop::start() {
  std::lock_guard lock(mu_);
  if (running_ || stopping_) return ok_status();
  if (!options_.predictor_snapshot.empty() && std::filesystem::exists(options_.predictor_snapshot)) {
    STRATA_RETURN_IF_ERROR(predictor_.load(options_.predictor_snapshot));
    spdlog::info("router: length predictor state loaded from {}", options_.predictor_snapshot);
  }
  running_ = true;
  thread_ = std::thread([this] { run(); });
  return ok_status();
}

void SchedulingLoop::save_snapshot() {
  if (options_.predictor_snapshot.empty()) return;
  last_snapshot_s_ = now_s();
  if (Status st = predictor_.save(options_.predictor_snapshot); !st.ok()) {
    spdlog::warn("router: cannot save the length predictor's state: {}", st.message());
  }
}

void SchedulingLoop::stop(std::string error) {
  Ended ended;
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      stopping_ = true;
      for (auto it = held_.begin(); it != held_.end();) {
        if (it->second.dispatched) {
          ++it;  // the dispatcher finishes it (it fails what is in flight when it stops)
          continue;
        }
        scheduler_.cancel(it->first);
        ended.emplace_back(std::move(it->second.on_output),
                           error.empty() ? finished_output(it->first, wire::kFinishAbort)
                                         : finished_output(it->first, wire::kFinishError, error));
        it = held_.erase(it);
      }
    }
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lock(mu_);
    if (running_) save_snapshot();
    running_ = false;
  }
  deliver(ended);
}

double SchedulingLoop::now_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_).count();
}

std::vector<GroupSnapshot> SchedulingLoop::snapshot_groups() const {
  std::vector<GroupSnapshot> snapshots;
  for (const GroupInfo& g : dispatcher_.groups()) snapshots.push_back(snapshot_of(g));
  return snapshots;
}

Status SchedulingLoop::enqueue(std::vector<Submission> choices) {
  // Read before taking mu_, as the loop thread does, to keep the time under mu_ short.
  const std::vector<GroupSnapshot> snapshots = snapshot_groups();
  const bool any_available = std::any_of(snapshots.begin(), snapshots.end(),
                                         [](const GroupSnapshot& g) { return g.available; });
  if (!any_available) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("no worker group is ready ({} registered); start a strata-worker "
                              "with --router {} or retry later",
                              snapshots.size(), dispatcher_.endpoint()));
  }
  Ended ended;
  {
    std::lock_guard lock(mu_);
    if (!running_ || stopping_) {
      return Status(StatusCode::kUnavailable,
                    "the router is not scheduling requests (it is stopping); retry the request");
    }
    std::vector<SchedulerRequest> scheduling;
    scheduling.reserve(choices.size());
    for (Submission& c : choices) {
      c.scheduling.id = c.request.id;
      scheduling.push_back(c.scheduling);
    }
    STRATA_RETURN_IF_ERROR(scheduler_.enqueue(scheduling, now_s()));
    for (Submission& c : choices) {
      const uint64_t id = c.request.id;
      held_.emplace(id, Held{.request = std::move(c.request), .on_output = std::move(c.on_output)});
    }
    schedule_locked(snapshots, ended);
  }
  deliver(ended);
  return ok_status();
}

size_t SchedulingLoop::num_unfinished() const {
  std::lock_guard lock(mu_);
  return scheduler_.num_unfinished();
}

void SchedulingLoop::release(uint64_t id) {
  std::lock_guard lock(mu_);
  scheduler_.release(id);
}

void SchedulingLoop::abort(uint64_t id) {
  OutputCallback callback;
  {
    std::lock_guard lock(mu_);
    auto it = held_.find(id);
    if (it == held_.end()) return;
    if (it->second.dispatched) {
      dispatcher_.abort(id);  // its final output comes back through note_output
      return;
    }
    scheduler_.cancel(id);
    callback = std::move(it->second.on_output);
    held_.erase(it);
  }
  if (callback) callback(finished_output(id, wire::kFinishAbort));
}

void SchedulingLoop::note_output(uint64_t id, const wire::TokenOutput& output) {
  std::lock_guard lock(mu_);
  auto it = held_.find(id);
  if (it == held_.end()) return;
  const auto num_tokens = static_cast<int64_t>(output.token_ids.size());
  it->second.num_output_tokens += num_tokens;
  if (num_tokens > 0) scheduler_.on_tokens(id, num_tokens);
  if (!output.finished()) return;
  // Whether the worker preempted this request is not reported per request; preemptions
  // reach the scheduler through GroupSnapshot::num_preemptions instead.
  const bool completed = output.finish_reason == wire::kFinishStop ||
                         output.finish_reason == wire::kFinishLength;
  // Released by release(), when the router has answered the client.
  const auto predicted = scheduler_.on_finished(id, it->second.num_output_tokens,
                                                /*preempted=*/false, completed, /*release=*/false);
  if (predicted && options_.on_prediction) options_.on_prediction(*predicted, it->second.num_output_tokens);
  held_.erase(it);
  // Room opened: worth a pass now only when something waits for it (enqueue runs its own).
  if (scheduler_.num_waiting() == 0) return;
  wake_pending_ = true;
  wake_.notify_one();
}

void SchedulingLoop::end_held_locked(uint64_t id, wire::TokenOutput output, Ended& ended) {
  auto it = held_.find(id);
  if (it == held_.end()) return;
  ended.emplace_back(std::move(it->second.on_output), std::move(output));
  held_.erase(it);
}

void SchedulingLoop::schedule_locked(std::span<const GroupSnapshot> groups, Ended& ended) {
  const ScheduleDecisions decisions = scheduler_.schedule(now_s(), groups);
  for (uint64_t id : decisions.timed_out) {
    auto it = held_.find(id);
    if (it == held_.end()) continue;
    if (it->second.dispatched) {
      dispatcher_.abort(id);  // stays held until its final output (on_finished)
      continue;
    }
    // The scheduler already dropped it from its queue.
    end_held_locked(id, finished_output(id, wire::kFinishAbort), ended);
  }
  for (const Refusal& r : decisions.refused) {
    spdlog::info("router: refused request {}: {}", r.id, r.message);
    end_held_locked(r.id, finished_output(r.id, wire::kFinishError, r.message), ended);
  }
  for (const Dispatch& d : decisions.dispatches) dispatch_locked(d, ended);
  if (options_.on_quantile) options_.on_quantile(scheduler_.admission_quantile());
}

void SchedulingLoop::dispatch_locked(const Dispatch& d, Ended& ended) {
  auto it = held_.find(d.id);
  if (it == held_.end() || it->second.dispatched) return;
  Held& held = it->second;
  held.dispatched = true;
  // Shared so that a refused submit_to can still answer the request.
  auto callback = std::make_shared<OutputCallback>(std::move(held.on_output));
  const uint64_t id = d.id;
  Status st = dispatcher_.submit_to(d.group_id, std::move(held.request),
                                    [this, id, callback](const wire::TokenOutput& output) {
                                      note_output(id, output);
                                      (*callback)(output);
                                    });
  if (st.ok()) return;
  // The group went away since its snapshot.
  spdlog::warn("router: request {} could not go to group {}: {}", id, d.group_id, st.message());
  scheduler_.on_finished(id, 0, /*preempted=*/false, /*completed=*/false);
  ended.emplace_back(std::move(*callback), finished_output(id, wire::kFinishError, st.message()));
  held_.erase(it);
}

void SchedulingLoop::run() {
  Ended ended;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, std::chrono::milliseconds(options_.tick_ms),
                   [this] { return stopping_ || wake_pending_; });
    if (stopping_) break;
    wake_pending_ = false;
    lock.unlock();
    const std::vector<GroupSnapshot> snapshots = snapshot_groups();
    lock.lock();
    if (stopping_) break;
    schedule_locked(snapshots, ended);
    if (now_s() - last_snapshot_s_ >= options_.snapshot_period_s) save_snapshot();
    if (!ended.empty()) {
      lock.unlock();
      deliver(ended);
      lock.lock();
    }
  }
}

}  // namespace strata::router
