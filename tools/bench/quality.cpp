#include "tools/bench/quality.h"

#include <algorithm>
#include <cmath>

#include "kernels/device.h"
#include "worker/kv/kv_cache.h"
#include "worker/model/llama_model.h"

namespace strata::bench {
namespace {

constexpr int kBlockSize = 16;

// log-softmax in double (the comparison must not add its own rounding).
std::vector<double> log_softmax(const std::vector<float>& logits) {
  const double max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - max);
  const double lse = max + std::log(sum);
  std::vector<double> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<double>(logits[i]) - lse;
  return out;
}

size_t argmax(const std::vector<float>& v) {
  return static_cast<size_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// One model stepping one sequence: each call feeds a token and returns the logits after it.
class Stepper {
 public:
  Stepper(const LoadedModel& model, int64_t max_tokens, DType kv_dtype)
      : forward_(model.config, model.weights, backend_for(model.weights.device)),
        cache_(model.config, model.weights.shard, kBlockSize,
               (max_tokens + kBlockSize - 1) / kBlockSize, kv_dtype, model.weights.device) {
    for (int64_t i = 0; i < cache_.num_blocks(); ++i) table_.push_back(static_cast<int32_t>(i));
  }
  const std::vector<float>& step(int32_t token) {
    ForwardBatch batch{{token}, {{position_, 1, table_, true}}};
    forward_.forward(batch, cache_, logits_);
    ++position_;
    return logits_;
  }

 private:
  LlamaModel forward_;
  KvCache cache_;
  std::vector<int32_t> table_;
  std::vector<float> logits_;
  int32_t position_ = 0;
};

}  // namespace

StatusOr<std::vector<std::vector<float>>> teacher_forced_logits(const LoadedModel& model,
                                                               std::span<const int32_t> tokens,
                                                               DType kv_dtype) {
  const auto n = static_cast<int64_t>(tokens.size());
  // The last token is only predicted, never fed: n − 1 positions must fit the context.
  if (n < 2 || n - 1 > model.config.max_position_embeddings) {
    return invalid_argument("teacher forcing needs 2 to {} tokens (the model's context + 1). Given: {}",
                            model.config.max_position_embeddings + 1, n);
  }
  Stepper stepper(model, n - 1, kv_dtype);
  std::vector<std::vector<float>> rows;
  for (int64_t i = 0; i + 1 < n; ++i) rows.push_back(stepper.step(tokens[static_cast<size_t>(i)]));
  return rows;
}

QualityReport compare_logits(const std::vector<std::vector<float>>& reference,
                             const std::vector<std::vector<float>>& candidate,
                             std::span<const int32_t> tokens) {
  QualityReport r;
  double kl_sum = 0, ref_nll = 0, cand_nll = 0;
  int64_t agree = 0;
  for (size_t i = 0; i < reference.size() && i < candidate.size(); ++i) {
    const std::vector<double> p = log_softmax(reference[i]), q = log_softmax(candidate[i]);
    double kl = 0;
    for (size_t t = 0; t < p.size(); ++t) kl += std::exp(p[t]) * (p[t] - q[t]);
    kl_sum += kl;
    r.max_kl = std::max(r.max_kl, kl);
    agree += argmax(reference[i]) == argmax(candidate[i]);
    const auto next = static_cast<size_t>(tokens[i + 1]);
    ref_nll -= p[next];
    cand_nll -= q[next];
    ++r.positions;
  }
  if (r.positions == 0) return r;
  const auto n = static_cast<double>(r.positions);
  r.mean_kl = kl_sum / n;
  r.top1_agreement = static_cast<double>(agree) / n;
  r.reference_perplexity = std::exp(ref_nll / n);
  r.candidate_perplexity = std::exp(cand_nll / n);
  return r;
}

StatusOr<std::vector<int32_t>> greedy_tokens(const LoadedModel& reference,
                                             std::vector<int32_t> prompt, int64_t length) {
  if (prompt.empty() || length > reference.config.max_position_embeddings) {
    return invalid_argument("greedy generation needs a prompt and at most {} tokens. Given: {}",
                            reference.config.max_position_embeddings, length);
  }
  Stepper stepper(reference, length, DType::kF32);
  std::vector<int32_t> tokens = std::move(prompt);
  for (size_t i = 0; static_cast<int64_t>(tokens.size()) < length; ++i) {
    const std::vector<float>& logits = stepper.step(tokens[i]);
    if (i + 1 == tokens.size()) tokens.push_back(static_cast<int32_t>(argmax(logits)));
  }
  return tokens;
}

}  // namespace strata::bench
