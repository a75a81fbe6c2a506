// LlamaModel: the forward pass of a Llama-family decoder over one engine step. A step is
// any mix of sequences, each contributing its next `num_new_tokens` tokens (a prefill chunk
// or one decode token); every operator runs on the concatenated tokens, and attention reads
// each sequence's keys and values from the paged KV cache through its block table.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kernels/ops.h"
#include "parallel/parallel_context.h"
#include "worker/kv_cache.h"
#include "worker/model_config.h"
#include "worker/model_weights.h"

namespace strata {

struct ForwardSequence {
  int32_t num_computed_tokens = 0;   // positions already in the KV cache
  int32_t num_new_tokens = 0;        // this step's tokens, at the following positions
  std::span<const int32_t> block_table;  // covers num_computed_tokens + num_new_tokens
  bool want_logits = true;           // logits of this step's last token
};

struct ForwardBatch {
  std::vector<int32_t> token_ids;          // each sequence's new tokens, concatenated
  std::vector<ForwardSequence> sequences;  // in the order of token_ids
};

class LlamaModel {
 public:
  // `parallel` (optional) places this rank in a tp × pp worker group; `weights` must then be
  // this rank's shard (weights.shard) and every rank of the group calls forward() with the
  // same batch.
  LlamaModel(const ModelConfig& config, const ModelWeights& weights,
             const kernels::KernelBackend& backend = kernels::cpu_backend(),
             ParallelContext* parallel = nullptr);

  // Writes this step's K/V into `cache` and returns logits [num sequences with want_logits,
  // vocab] in sequence order (resized as needed) on the last pipeline stage; other stages
  // pass their activations on and return no logits. Not thread-safe: it owns a workspace.
  void forward(const ForwardBatch& batch, KvCache& cache, std::vector<float>& logits);

  // Seconds spent in tensor-parallel collectives during the last forward().
  double last_collective_seconds() const { return collective_seconds_; }

  const ModelConfig& config() const { return config_; }

 private:
  void ensure_workspace(int64_t num_tokens);
  void embed(const ForwardBatch& batch, int64_t num_tokens);
  void all_reduce(float* data, size_t count);
  void lm_head(int64_t num_rows, std::vector<float>& logits);

  const ModelConfig& config_;
  const ModelWeights& weights_;
  const kernels::KernelBackend& backend_;
  std::vector<double> inv_freq_;
  // Workspace, grown to the largest step seen: [tokens, width] row-major.
  int64_t workspace_tokens_ = 0;
  std::vector<float> x_, x_norm_, qkv_, attn_, gate_up_, act_;
  std::vector<int32_t> positions_, slots_, local_ids_;
  std::vector<float> partial_, logits_local_, logits_gathered_;
  ParallelContext* parallel_;
  double collective_seconds_ = 0;
};

}  // namespace strata
