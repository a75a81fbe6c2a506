// RouterScheduler: the router's queue between accepting a request and sending it to a worker
// group (issue 7). Every request the router serves passes through it, whatever the policy.
// Pure logic on an injected clock (every call takes now_s; no threads, no sockets), so the
// server and the simulator drive the same code.
//
// Design note. enqueue() is the router's one queue bound: it refuses a request when the
// unfinished requests (waiting or running) would pass max_queue_requests, when the waiting
// prompt tokens would pass max_queue_tokens, or when the predicted queueing delay exceeds a
// deadline; each answers ResourceExhausted (429). The choices of one client request are
// enqueued together, all or none. schedule(now, groups) orders the waiting requests
// (ordering.h), and for each one finds the groups whose admission policy lets it in
// (admission.h), then places it on one of them (placement.h). A request no available group
// could take even if that group were empty is refused there, not kept waiting for room that
// can never open. The running set per group is the scheduler's own record (what it
// dispatched, the tokens seen since, what finished), so admission does not wait for the
// workers' next KV report; from the reports it takes capacity, free blocks and the
// preemption counter, whose growth feeds the adaptive quantile. A request that does not fit
// is skipped (later ones may back-fill) unless it is aged, in which case the pass stops and
// the next room that opens is its. Placement may prefer the group whose prefix index
// holds the longest part of the prompt (placement.h); each dispatch records its prompt's
// block hashes in its group's index, forgotten when the group leaves. A finished request may keep counting toward the bound
// while the caller still delivers its answer (on_finished(release = false), release()), as
// the router's HTTP responses do. Deadlines: each request has a timeout (its own or the
// default); schedule() returns the ids past it. A waiting one is dropped from the queue
// there; a running one stays until on_finished (the caller aborts it in the worker).
// Learning: on_finished() feeds the predictor with the actual output length.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/config_fields.h"
#include "common/status.h"
#include "router/scheduling/admission.h"
#include "router/scheduling/length_predictor.h"
#include "router/scheduling/ordering.h"
#include "router/scheduling/placement.h"
#include "router/scheduling/prefix_index.h"

namespace strata::router {

struct RouterSchedulerConfig {
  AdmissionPolicy admission = OnDemand{};
  OrderPolicy order = Fcfs{};
  PlacementRule placement{};          // placement.placement comes from RouterConfig's name
  AdaptiveQuantileConfig quantile{};  // quantile.initial is the admission quantile
  bool adapt_quantile = true;
  int64_t kv_headroom_blocks = 0;     // blocks per group kept spare
  int64_t max_queue_requests = 1024;  // unfinished (waiting + running) requests before 429
  int64_t max_queue_tokens = int64_t{1} << 22;  // waiting prompt tokens before 429
  double max_wait_s = 30;             // aging bound (see ordering.h)
  double queue_deadline_s = 0;        // 429 when the predicted queueing delay exceeds it; 0: off
  double request_timeout_s = 600;     // default per-request timeout, from enqueue
  // The numbers the router exposes; the policies come from RouterConfig's names for them.
  template <typename V>
  void visit_fields(V& v) {
    using config::Range;
    v("max_queue_requests", max_queue_requests, "unfinished requests (each of n choices counts) accepted before answering 429", Range{1, 1e6});
    v("request_timeout_s", request_timeout_s, "seconds before a running request is aborted", Range{1, 86400});
    v("admission_quantile", quantile.initial, "starting quantile of predicted output length used by `predicted` (adapts toward 1% preemptions)", Range{0.5, 0.999});
    v("kv_headroom_blocks", kv_headroom_blocks, "KV blocks per worker group that admission keeps spare", Range{0, 1e9});
    v("max_queue_tokens", max_queue_tokens, "waiting prompt tokens accepted before answering 429", Range{1, 1e12});
    v("max_wait_s", max_wait_s, "with --order sjf, a request waiting this long goes ahead of younger ones", Range{0, 86400});
    v("placement_balance_slack", placement.balance_slack, "with --placement prefix, requests a group may run beyond the least loaded one (or half as many again) and still be chosen for its cached prefix", Range{0, 1e6});
    v("queue_deadline_s", queue_deadline_s, "answer 429 at once when a request's predicted queueing delay exceeds this (0: never)", Range{0, 86400});
  }
};

struct SchedulerRequest {
  uint64_t id = 0;
  RequestFeatures features;
  // The prompt's chained block hashes at kPrefixIndexBlockTokens (chain_block_hashes());
  // empty: placement knows nothing of its prefix.
  std::vector<BlockHash> prefix_hashes;
  int priority = 0;        // higher first
  double timeout_s = 0;    // 0: the config's request_timeout_s
};

// One worker group as the dispatcher last saw it.
struct GroupSnapshot {
  std::string group_id;
  bool available = false;  // alive and ready
  int64_t total_blocks = 0;
  int64_t free_blocks = 0;
  int32_t block_size = 16;
  int64_t num_preemptions = 0;  // the worker's counter since it started
};

struct Dispatch {
  uint64_t id = 0;
  std::string group_id;
};

// A waiting request that no available group could ever admit; dropped from the scheduler.
struct Refusal {
  uint64_t id = 0;
  std::string message;  // names the blocks needed and the largest capacity
};

struct ScheduleDecisions {
  std::vector<Dispatch> dispatches;  // send these now, in this order
  std::vector<uint64_t> timed_out;   // past their timeout: answer/abort them
  std::vector<Refusal> refused;      // answer these with an error
};

class RouterScheduler {
 public:
  // `predictor` must outlive the scheduler.
  RouterScheduler(RouterSchedulerConfig config, LengthPredictor& predictor);

  // Queues `request`. ResourceExhausted (429) when the queue is full or the predicted wait
  // exceeds queue_deadline_s; InvalidArgument when the id is already known.
  Status enqueue(const SchedulerRequest& request, double now_s);
  // Queues the choices of one client request, all or none (the bounds count every choice).
  Status enqueue(std::span<const SchedulerRequest> choices, double now_s);
  ScheduleDecisions schedule(double now_s, std::span<const GroupSnapshot> groups);
  // `n` more output tokens of a running request arrived.
  void on_tokens(uint64_t id, int64_t n);
  // A dispatched request finished after `output_tokens`. `completed`: it ended on its own
  // (stop or length); only then does it teach the predictor, since an aborted, failed or
  // timed-out request's length is not an answer length. `preempted` counts it as preempted
  // for the adaptive quantile; callers that feed preemptions through
  // GroupSnapshot::num_preemptions pass false, or they count twice. Returns the median length
  // predicted at enqueue when the request taught the predictor (for a predicted-vs-actual
  // metric), nullopt otherwise.
  // `release` false: the caller is still delivering the answer (the router's HTTP response),
  // and the request counts toward max_queue_requests until release(id).
  std::optional<int64_t> on_finished(uint64_t id, int64_t output_tokens, bool preempted,
                                     bool completed = true, bool release = true);
  // The answer of `id` is delivered or its client went away: it stops counting toward
  // max_queue_requests. An id not finished yet is released when it finishes; unknown ids are
  // ignored.
  void release(uint64_t id);
  // The client went away: a waiting request is dropped (a running one needs on_finished).
  void cancel(uint64_t id);

  // What max_queue_requests bounds: waiting, running, and finished but not yet released.
  size_t num_unfinished() const { return requests_.size() + delivering_.size(); }
  size_t num_waiting() const { return waiting_.size(); }
  int64_t num_waiting_tokens() const { return waiting_tokens_; }
  size_t num_running() const { return requests_.size() - waiting_.size(); }
  double admission_quantile() const { return quantile_.value(); }
  // Output tokens per second across groups, from on_tokens and the clock; 0 until measured.
  double tokens_per_s() const { return tokens_per_s_; }

 private:
  struct Tracked {
    SchedulerRequest request;
    LengthDistribution length;
    double arrival_s = 0;
    double deadline_s = 0;
    bool running = false;
    bool timeout_reported = false;
    bool released = false;  // release() came before on_finished
    std::string group_id;
    int64_t generated = 0;
    int64_t matched_tokens = 0;  // what placement expected its group to have cached
  };
  // What the router has placed in each available group, for one schedule() pass.
  struct GroupLoad {
    const std::string* group_id = nullptr;
    GroupKv kv;
    int64_t pending_tokens = 0;  // see PlacementCandidate
  };
  Status check_room(std::span<const SchedulerRequest> choices) const;
  // Why no group of `loads` could take `newcomer` even if it held nothing else; nullopt
  // when one could (or none is available: one may come).
  std::optional<std::string> refusal(std::span<const GroupLoad> loads,
                                     const KvRequest& newcomer) const;
  void update_rates(double now_s, std::span<const GroupSnapshot> groups);
  bool prefix_aware() const { return config_.placement.placement == Placement::kPrefixAware; }
  // Keeps one prefix index per available group (prefix-aware placement only).
  void forget_gone_groups(std::span<const GroupSnapshot> groups);
  int64_t matched_tokens(const std::string& group_id, std::span<const BlockHash> hashes) const;
  // What a running request still asks of its group, in tokens (PlacementCandidate::pending_tokens).
  static int64_t pending_tokens(const Tracked& t);
  void collect_timeouts(double now_s, ScheduleDecisions& out);
  std::vector<GroupLoad> group_loads(std::span<const GroupSnapshot> groups, double q) const;
  // Places the waiting requests that fit, in queue order; refuses the ones that never can.
  void place_waiting(double now_s, double q, std::vector<GroupLoad>& loads, ScheduleDecisions& out);
  void remove_waiting(uint64_t id);
  // Seconds until the waiting requests ahead of a newcomer are served, at the measured rate.
  double predicted_wait_s(int priority, int64_t median_tokens) const;

  RouterSchedulerConfig config_;
  LengthPredictor& predictor_;
  AdaptiveQuantile quantile_;
  std::unordered_map<uint64_t, Tracked> requests_;  // waiting and running
  std::vector<uint64_t> waiting_;                   // arrival order
  std::unordered_set<uint64_t> delivering_;         // finished, not yet released
  int64_t waiting_tokens_ = 0;
  std::unordered_map<std::string, int64_t> last_preemptions_;
  std::unordered_map<std::string, PrefixIndex> prefix_indexes_;  // per available group
  // Throughput: tokens counted over windows of >= 1 s, smoothed.
  int64_t window_tokens_ = 0;
  double window_start_s_ = -1;
  double tokens_per_s_ = 0;
};

}  // namespace strata::router
