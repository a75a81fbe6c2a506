#include "worker/engine/speculative/speculation_governor.h"

#include <algorithm>
#include <bit>

namespace strata {

size_t SpeculationGovernor::bucket_of(int32_t num_decoding) {
  const auto n = static_cast<uint32_t>(std::max(num_decoding, 1));
  return std::min<size_t>(static_cast<size_t>(std::bit_width(n)) - 1, 23);
}

bool SpeculationGovernor::should_speculate(int32_t num_decoding) {
  Bucket& b = buckets_[bucket_of(num_decoding)];
  if (b.with.samples < kTrials) return true;
  if (b.without.samples < kTrials) return false;
  const bool drafts_win = b.with.tokens_per_s >= b.without.tokens_per_s;
  return ++b.decisions % kRetryEvery == 0 ? !drafts_win : drafts_win;
}

void SpeculationGovernor::observe(int32_t num_decoding, bool speculated, int64_t tokens, double seconds) {
  if (num_decoding < 1 || tokens < 1 || !(seconds > 0)) return;
  Bucket& b = buckets_[bucket_of(num_decoding)];
  Arm& arm = speculated ? b.with : b.without;
  const double rate = static_cast<double>(tokens) / seconds;
  // The first sample sets the rate; later ones move it a quarter of the way.
  arm.tokens_per_s = arm.samples == 0 ? rate : 0.75 * arm.tokens_per_s + 0.25 * rate;
  ++arm.samples;
}

double SpeculationGovernor::rate(int32_t num_decoding, bool speculated) const {
  const Bucket& b = buckets_[bucket_of(num_decoding)];
  return speculated ? b.with.tokens_per_s : b.without.tokens_per_s;
}

}  // namespace strata
