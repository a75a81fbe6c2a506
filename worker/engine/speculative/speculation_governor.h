// SpeculationGovernor: whether drafts pay at a given decode batch size, decided by what they
// measured. Speculation trades target passes for draft passes and wider verification steps;
// where a step is compute-bound (a large batch, or a CPU at any batch) the trade loses, and
// where it is memory-bound it wins, and which is which depends on the machine, the model and
// the text. So for each batch size bucket (1, 2–3, 4–7, ...) it keeps the decode tokens per
// second of steps with drafts and of steps without, tries each a few times, then runs the
// faster one, re-trying the other every kRetryEvery decisions in case the traffic changed.
// Plain logic over observed (tokens, seconds); the engine feeds it decode-only steps.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace strata {

class SpeculationGovernor {
 public:
  static constexpr int kTrials = 3;        // steps of each kind before comparing
  static constexpr int kRetryEvery = 32;   // decisions between re-trials of the losing kind

  // Whether the next step with `num_decoding` decoding sequences should draft.
  bool should_speculate(int32_t num_decoding);
  // A decode-only step of `num_decoding` sequences produced `tokens` in `seconds`.
  void observe(int32_t num_decoding, bool speculated, int64_t tokens, double seconds);
  // The measured decode tokens per second in that bucket (0 until measured).
  double rate(int32_t num_decoding, bool speculated) const;

 private:
  struct Arm {
    double tokens_per_s = 0;
    int samples = 0;
  };
  struct Bucket {
    Arm with, without;
    int decisions = 0;
  };
  static size_t bucket_of(int32_t num_decoding);
  std::array<Bucket, 24> buckets_{};
};

}  // namespace strata
