#include "router/scheduling/admission.h"

#include <algorithm>

namespace strata::router {

StatusOr<AdmissionPolicy> parse_admission_policy(std::string_view name) {
  if (name == "on-demand") return AdmissionPolicy{OnDemand{}};
  if (name == "reserve-max") return AdmissionPolicy{ReserveMax{}};
  if (name == "predicted") return AdmissionPolicy{Predicted{}};
  return invalid_argument("`admission_policy` must be on-demand, reserve-max or predicted. Given: {}",
                          name);
}

const char* admission_policy_name(const AdmissionPolicy& policy) {
  struct Name {
    const char* operator()(OnDemand) const { return "on-demand"; }
    const char* operator()(ReserveMax) const { return "reserve-max"; }
    const char* operator()(Predicted) const { return "predicted"; }
  };
  return std::visit(Name{}, policy);
}

int64_t blocks_for(int64_t tokens, int32_t block_size) {
  const int64_t bs = std::max<int32_t>(block_size, 1);
  return (std::max<int64_t>(tokens, 0) + bs - 1) / bs;
}

int64_t predicted_peak_blocks(std::span<const KvRequest> requests, int32_t block_size) {
  std::vector<KvRequest> sorted(requests.begin(), requests.end());
  std::sort(sorted.begin(), sorted.end(), [](const KvRequest& a, const KvRequest& b) {
    return a.predicted_left_tokens > b.predicted_left_tokens;
  });
  const int64_t bs = std::max<int32_t>(block_size, 1);
  int64_t peak = 0, used_sum = 0;
  for (size_t k = 0; k < sorted.size(); ++k) {
    const auto i = static_cast<int64_t>(k + 1);
    used_sum += sorted[k].used_tokens;
    const int64_t tokens = i * sorted[k].predicted_left_tokens + used_sum;
    peak = std::max(peak, (tokens + i * (bs - 1)) / bs);
  }
  return peak;
}

bool admits(const AdmissionPolicy& policy, const GroupKv& group, const KvRequest& newcomer,
            int64_t headroom_blocks) {
  const int64_t capacity = group.total_blocks - headroom_blocks;
  const int32_t bs = group.block_size;
  if (std::holds_alternative<OnDemand>(policy)) {
    // Free = the worker's report, or the router's own count if that is lower (the report
    // does not yet show what was sent since).
    int64_t held = 0;
    for (const auto& r : group.running) held += blocks_for(r.used_tokens, bs);
    const int64_t free_blocks = std::min(group.free_blocks, group.total_blocks - held);
    return blocks_for(newcomer.used_tokens, bs) <= free_blocks - headroom_blocks;
  }
  if (std::holds_alternative<ReserveMax>(policy)) {
    int64_t reserved = blocks_for(newcomer.used_tokens + newcomer.max_left_tokens, bs);
    for (const auto& r : group.running) reserved += blocks_for(r.used_tokens + r.max_left_tokens, bs);
    return reserved <= capacity;
  }
  std::vector<KvRequest> with(group.running);
  with.push_back(newcomer);
  return predicted_peak_blocks(with, bs) <= capacity;
}

AdaptiveQuantile::AdaptiveQuantile(AdaptiveQuantileConfig config)
    : config_(config), q_(std::clamp(config.initial, config.min, config.max)) {}

void AdaptiveQuantile::update(int64_t finished, int64_t preemptions) {
  const double signal = static_cast<double>(preemptions) -
                        config_.target_preemption_rate * static_cast<double>(finished);
  q_ = std::clamp(q_ + config_.step * signal, config_.min, config_.max);
}

}  // namespace strata::router
