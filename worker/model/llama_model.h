// LlamaModel: the forward pass of a Llama-family decoder over one engine step. A step is
// any mix of sequences, each contributing its next `num_new_tokens` tokens (a prefill chunk
// or one decode token); every operator runs on the concatenated tokens, and attention reads
// each sequence's keys and values from the paged KV cache through its block table.
//
// One code path for every device: activations are tensors on the weights' device, every
// operation on them is a backend op, and the step's metadata (worker/model/step_inputs.h, then
// the step's attention plan) is uploaded once per step through the backend's copy. The
// attention plan is made once per step and run by every layer over a workspace this
// model owns. Logits come back to the host at the end of the step, which is the step's
// one synchronization.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "kernels/ops.h"
#include "parallel/parallel_context.h"
#include "worker/kv/kv_cache.h"
#include "worker/model/model_config.h"
#include "worker/model/model_weights.h"
#include "worker/model/step_inputs.h"

namespace strata {

class DecodeGraphRunner;

struct ForwardSequence {
  int32_t num_computed_tokens = 0;   // positions already in the KV cache
  int32_t num_new_tokens = 0;        // this step's tokens, at the following positions
  std::span<const int32_t> block_table;  // covers num_computed_tokens + num_new_tokens
  int32_t num_logit_rows = 1;        // logits of this step's last n tokens (speculative
                                     // verification wants every draft row's)
};

struct ForwardBatch {
  std::vector<int32_t> token_ids;          // each sequence's new tokens, concatenated
  std::vector<ForwardSequence> sequences;  // in the order of token_ids
};

// Decode-only steps of at most buckets.back() sequences run padded to the smallest bucket
// that holds them, from fixed input buffers (the inputs a CUDA graph replays).
struct PaddedDecodeConfig {
  std::vector<int> buckets;     // ascending batch sizes (decode_graph_buckets, kernels/device_plan.h)
  int max_model_len = 0;        // bounds every context: fixes the decode attention grid
  int32_t scratch_block = -1;   // a KV block no sequence owns; padding rows attend to it
  int64_t max_num_tokens = 0;   // tokens of the largest eager step (workspaces sized once)
  bool cuda_graphs = true;      // capture each bucket (CUDA only); false: run them eagerly
};

class LlamaModel {
 public:
  // `parallel` (optional) places this rank in a tp × pp worker group; `weights` must then be
  // this rank's shard (weights.shard) and every rank of the group calls forward() with the
  // same batch. `backend` runs on weights.device.
  LlamaModel(const ModelConfig& config, const ModelWeights& weights,
             const kernels::KernelBackend& backend = kernels::cpu_backend(),
             ParallelContext* parallel = nullptr);
  ~LlamaModel();

  // Writes this step's K/V into `cache` and returns logits [Σ num_logit_rows,
  // vocab] in sequence order (resized as needed) on the last pipeline stage; other stages
  // pass their activations on and return no logits. Not thread-safe: it owns a workspace.
  void forward(const ForwardBatch& batch, KvCache& cache, std::vector<float>& logits);

  // Turns on padded decode steps over `cache` (other caches run eagerly) and, with
  // cuda_graphs on a CUDA device, captures one graph per bucket now.
  Status enable_padded_decode(const PaddedDecodeConfig& config, KvCache& cache);

  // Seconds spent in tensor-parallel collectives during the last forward().
  double last_collective_seconds() const { return collective_seconds_; }
  // Whether the last forward() ran padded, and whether it replayed a CUDA graph.
  bool last_step_padded() const { return last_step_padded_; }
  bool last_step_graphed() const { return last_step_graphed_; }

  const ModelConfig& config() const { return config_; }

  // Device bytes of the activation workspace for steps of up to max_tokens tokens and
  // max_logit_rows logit rows (the activation share of a GPU's memory plan).
  static int64_t workspace_bytes(const ModelConfig& config, const ShardPlan& shard,
                                 int64_t max_tokens, int64_t max_logit_rows);

 private:
  // Device pointers of one step's inputs. Decode sequences are either a host array
  // (`decode_seqs`, eager) or already on the device (`device_decode_seqs`, padded).
  struct StepArgs {
    const int32_t* token_ids = nullptr;
    const int32_t* positions = nullptr;
    const int32_t* slots = nullptr;
    const int32_t* logit_rows = nullptr;
    int64_t num_tokens = 0, num_logit_rows = 0;
    std::span<const kernels::AttentionSequence> decode_seqs, prefill_seqs;
    const kernels::AttentionSequence* device_decode_seqs = nullptr;
    int num_device_decode_seqs = 0;
    int max_context_len = 0;  // bounds the device decode sequences' contexts
  };
  struct Padded;  // padded-decode state: layout, fixed buffer, graphs

  void ensure_workspace(int64_t num_tokens, int64_t num_logit_rows);
  // One step's layers over the prepared inputs; the pieces below are its parts.
  void run(const StepArgs& args, KvCache& cache);
  void attention_block(int layer, const StepArgs& args, KvCache& cache);
  void attend(int layer, KvCache& cache, const float* q, int64_t q_stride);
  void plan_attention(const StepArgs& args, int block_size);
  void run_padded(int bucket, KvCache& cache);
  void mlp_block(int layer, int64_t num_tokens);
  void finish(const StepArgs& args);
  void project(int64_t num_tokens, const MatrixInput& in, const Matrix& w, const float* bias,
               float* y, int64_t ldy, bool accumulate);
  MatrixInput normalize_for(const Matrix& w, const Tensor& weight, int64_t rows);
  MatrixInput activate_for(const Matrix& w, int64_t rows);
  void row_parallel(int64_t num_tokens, const MatrixInput& in, const Matrix& w);
  int64_t gemm_workspace_bytes(int64_t m) const;
  void embed(const StepArgs& args);
  void all_reduce(float* data, size_t count);
  void lm_head(int64_t num_rows);
  void copy_logits_to_host(int64_t num_rows, std::vector<float>& logits);
  // forward_eager returns the step's logit rows; forward_padded is false when no bucket
  // holds the batch (then nothing ran).
  int64_t forward_eager(const ForwardBatch& batch, KvCache& cache);
  bool forward_padded(const ForwardBatch& batch, KvCache& cache);
  StepArgs padded_args(int bucket) const;
  Status capture_graphs(KvCache& cache);

  const ModelConfig& config_;
  const ModelWeights& weights_;
  const kernels::KernelBackend& backend_;
  const Device device_;
  Tensor inv_freq_;  // [head_dim / 2] doubles (as bytes), on device_
  // Workspace on device_, grown to the largest step seen: [tokens, width] row-major.
  // Growing it bumps workspace_generation_ (captured graphs hold the old addresses).
  int64_t workspace_tokens_ = 0, workspace_logit_rows_ = 0, workspace_generation_ = 0;
  Tensor x_, x_norm_, partial_, qkv_, attn_, gate_up_, act_;
  Tensor xq_, xq_scale_;   // W8A8: a matrix's int8 input rows [tokens, max(h, ffn)], scales
  Tensor gemm_workspace_;  // every GEMM's converted activations (one GEMM at a time)
  Tensor logits_local_, logits_gathered_;  // [rows, vocab_rows], [tp · rows, vocab_rows]
  StepInputs step_inputs_;
  // Device copy of step_inputs_.words() then the attention plan's metadata (eager steps).
  Tensor step_words_;
  std::vector<unsigned char> step_staging_;  // host image of that upload
  // This step's attention plan, run by every layer, and the workspace it runs in.
  kernels::AttentionPlan attention_plan_;
  Tensor attention_workspace_;
  std::unique_ptr<Padded> padded_;
  ParallelContext* parallel_;
  double collective_seconds_ = 0;
  bool last_step_padded_ = false, last_step_graphed_ = false;
};

}  // namespace strata
