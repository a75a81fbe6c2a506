// How far a model variant's next-token distributions are from a reference's: the same
// checkpoint loaded twice (e.g. fp32 and --quantization w8a8) is run over one token
// sequence with teacher forcing, and at every position the two distributions are compared.
// What quantization costs in quality, measured against the full-precision forward rather
// than against itself.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/status.h"
#include "worker/model/model_loader.h"

namespace strata::bench {

struct QualityReport {
  int64_t positions = 0;        // next-token predictions compared
  double mean_kl = 0;           // mean over positions of KL(reference ‖ candidate), nats
  double max_kl = 0;
  double top1_agreement = 0;    // fraction of positions whose argmax tokens agree
  double reference_perplexity = 0;  // of tokens[1:] under the reference
  double candidate_perplexity = 0;  // of tokens[1:] under the candidate
};

// Teacher-forced logits: row i is the distribution over the token after tokens[0..i],
// for i < tokens.size() − 1, one decode step per position (the path serving takes), with
// the KV cache in `kv_dtype`.
StatusOr<std::vector<std::vector<float>>> teacher_forced_logits(const LoadedModel& model,
                                                               std::span<const int32_t> tokens,
                                                               DType kv_dtype = DType::kF32);

// Compares two sets of teacher-forced logits over `tokens` (row i predicts tokens[i + 1]).
QualityReport compare_logits(const std::vector<std::vector<float>>& reference,
                             const std::vector<std::vector<float>>& candidate,
                             std::span<const int32_t> tokens);

// The reference's greedy continuation of `prompt` to `length` tokens in all (prompt
// included): the "long greedy generation" the candidate is teacher-forced along.
StatusOr<std::vector<int32_t>> greedy_tokens(const LoadedModel& reference,
                                             std::vector<int32_t> prompt, int64_t length);

}  // namespace strata::bench
