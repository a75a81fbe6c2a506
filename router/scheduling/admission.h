// KV-aware admission for router scheduling (issue 7): may one more request go to a group?
//
// Design note. Three policies, chosen in config, compared by the benchmark on one build:
//   OnDemand   (vLLM-like) admit while the group has free blocks for the newcomer's prompt;
//              the worker allocates decode blocks as it goes and preempts when it runs out.
//   ReserveMax (TGI-like)  Σ over running of blocks(prompt + max_tokens) + the newcomer's
//              ≤ capacity − headroom: never preempts, but holds memory that is never used.
//   Predicted  admit when the group's predicted *peak* KV use, with the newcomer, stays
//              ≤ capacity − headroom (the exact form is below, at predicted_peak_blocks).
// Every quantity is in blocks of the group's block_size. The caller (RouterScheduler) keeps
// the running set from its own dispatch record, so decisions made within one schedule()
// pass see each other even though the worker's free-block report is older.
//
// AdaptiveQuantile moves Predicted's quantile q toward a target preemption rate: stochastic
// approximation, q ← clamp(q + step·(preemptions − target_rate·finished)); its fixed point
// is the q at which preemptions / finished == target_rate.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"

namespace strata::router {

// A request that holds KV blocks in a group (or would, once admitted).
struct KvRequest {
  int64_t used_tokens = 0;       // prompt + tokens generated so far (the newcomer: its prompt)
  int64_t max_left_tokens = 0;   // max_tokens − generated: the most it can still grow
  int64_t predicted_left_tokens = 0;  // remaining length at the admission quantile, ≤ max_left
};

struct GroupKv {
  int64_t total_blocks = 0;
  int64_t free_blocks = 0;  // the worker's last report (may be stale)
  int32_t block_size = 16;
  std::vector<KvRequest> running;  // what the router has sent there and not seen finish
};

struct OnDemand {};
struct ReserveMax {};
struct Predicted {};
using AdmissionPolicy = std::variant<OnDemand, ReserveMax, Predicted>;

// "on-demand" | "reserve-max" | "predicted"; InvalidArgument naming the choices otherwise.
StatusOr<AdmissionPolicy> parse_admission_policy(std::string_view name);
const char* admission_policy_name(const AdmissionPolicy& policy);

int64_t blocks_for(int64_t tokens, int32_t block_size);  // ceil(tokens / block_size)

// The predicted peak KV use, in blocks, of `requests` if each grows by one token per step
// and finishes after predicted_left_tokens more. Sort by left descending (left_1 ≥ … ≥ left_n);
// memory only falls when a request finishes, so the peak is just before one does: at
// t = left_i the requests 1..i are alive, holding T_i = i·left_i + Σ_{j≤i} used_j tokens.
// In blocks each request rounds up, so Σ_{j≤i} ceil((used_j + left_i)/bs) ≤
// floor((T_i + i·(bs − 1)) / bs); we return the max over i of that bound (exact for bs = 1).
int64_t predicted_peak_blocks(std::span<const KvRequest> requests, int32_t block_size);

// Whether `policy` lets `newcomer` join `group`, keeping `headroom_blocks` spare.
bool admits(const AdmissionPolicy& policy, const GroupKv& group, const KvRequest& newcomer,
            int64_t headroom_blocks);

struct AdaptiveQuantileConfig {
  double initial = 0.9;
  double min = 0.5;
  double max = 0.999;
  double target_preemption_rate = 0.01;  // preemptions per finished request
  double step = 0.02;
};

class AdaptiveQuantile {
 public:
  explicit AdaptiveQuantile(AdaptiveQuantileConfig config = {});
  double value() const { return q_; }
  // `finished` requests finished and `preemptions` preemptions happened since the last call.
  void update(int64_t finished, int64_t preemptions);

 private:
  AdaptiveQuantileConfig config_;
  double q_;
};

}  // namespace strata::router
