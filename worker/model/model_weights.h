// ModelWeights: the tensors of a Llama-family decoder in the layout the forward pass uses,
// and the one place that builds them from any checkpoint format. Loaders only say where
// each named tensor is (WeightSource); the builder checks shapes, converts dtypes, fuses
// q|k|v and gate|up into single matrices (one GEMM each per layer), and turns HF's
// rotate-half q/k rows into the adjacent-pair layout the RoPE kernel expects.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/gguf/gguf_file.h"
#include "common/status.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"
#include "worker/model/matrix.h"
#include "worker/model/model_config.h"
#include "worker/model/shard_plan.h"

namespace strata {

struct LayerWeights {
  Tensor attn_norm;  // [hidden] fp32
  Matrix wqkv;       // [q_size + 2·kv_size, hidden]: rows of q, then k, then v
  Tensor bqkv;       // [q_size + 2·kv_size] fp32, or undefined without attention bias
  Matrix wo;         // [hidden, q_size]
  Tensor ffn_norm;   // [hidden] fp32
  Matrix w_gate_up;  // [2·intermediate, hidden]: rows of gate, then up
  Matrix w_down;     // [hidden, intermediate]
};

// One rank's weights. Shapes below are for the whole model on one rank; with a ShardPlan,
// q_size/kv_size/intermediate/vocab become the local slices (see shard_plan.h) and `layers`
// holds this pipeline stage's layers only.
struct ModelWeights {
  DType dtype = DType::kF32;  // of the dense matrices; norms and biases are always fp32
  Quantization quantization = Quantization::kNone;  // of the layer matrices that take it
  Device device;              // where every tensor lives
  ShardPlan shard;
  Tensor embedding;           // [vocab rows, hidden]; first stage (and last, when tied)
  std::vector<LayerWeights> layers;
  Tensor final_norm;          // [hidden] fp32; last stage
  // [vocab rows, hidden]; last stage. Dense (the embedding's own tensor when tied) or, under
  // W4A16, int4 like the layers (a tied table then keeps a dense copy for the lookup).
  Matrix lm_head;
  kernels::WeightLayout embedding_layout = kernels::WeightLayout::kRowMajor;
  size_t bytes() const;
};

// The checkpoint tensors a model needs, by role.
enum class WeightRole {
  kEmbedding, kAttnNorm, kWq, kWk, kWv, kBq, kBk, kBv, kWo, kFfnNorm, kWGate, kWUp, kWDown,
  kFinalNorm, kLmHead,
};

// A checkpoint tensor as the loader found it: raw data in its stored dtype.
struct SourceTensor {
  std::string name;             // as the checkpoint names it, for messages
  const void* data = nullptr;   // valid until the next get() of the same source
  DType dtype = DType::kF32;    // of the elements, unless gguf_type is set
  std::vector<int64_t> shape;
  // A GGUF block-quantized tensor (Q8_0, Q4_K, ...): each row is whole blocks of that type.
  // Rows are widened to fp32 as they are copied, except where a matrix keeps the blocks
  // (Q8_0 under W8A8, Q4_0 under W4A16: the layouts those kernels read).
  std::optional<gguf::GgmlType> gguf_type;
  size_t nbytes = 0;  // of the stored tensor (set by sources that can release it)
};

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  // layer is ignored for model-level roles.
  virtual StatusOr<SourceTensor> get(WeightRole role, int layer) = 0;
  // HF checkpoints store q/k rows in rotate-half order; llama2.c in adjacent pairs.
  virtual bool rotate_half_layout() const = 0;
  virtual std::string description() const = 0;  // the file, for messages
  // The builder is done with this tensor: a source reading a mapped file drops its pages
  // (MappedFile::release), one that owns plain memory keeps it.
  virtual void release(const SourceTensor&) {}
};

// What build_model_weights makes of a checkpoint besides its shapes.
struct WeightBuildOptions {
  DType dtype = DType::kF32;  // of the dense matrices: kF32, kBF16 or kF16
  // W8A8: the QKV, gate/up and down projections (their inputs come from the fused
  // RMSNorm / SiLU·mul quantization); the o-projection and the LM head stay dense. W4A16:
  // every layer matrix whose k is a multiple of its group, and the LM head (the largest
  // single matrix a decode step reads) on the same condition.
  Quantization quantization = Quantization::kNone;
  // Packs the matrices for this backend (its pack ops, when it has them; nullptr keeps them
  // row-major). The forward pass must then run on a backend that reads that layout.
  const kernels::KernelBackend* pack_for = &kernels::cpu_backend();
};

// Builds every tensor from `source`.
StatusOr<ModelWeights> build_model_weights(const ModelConfig& config, WeightSource& source,
                                           const WeightBuildOptions& options);
// Builds only this rank's slices; nothing else is read from the (mmap'd) checkpoint.
StatusOr<ModelWeights> build_model_weights(const ModelConfig& config, WeightSource& source,
                                           const WeightBuildOptions& options,
                                           const ShardPlan& shard);

// A copy of `weights` (row-major, as the CUDA backend reads them) on `device`, which
// init_device() has readied; a tied LM head stays the embedding. Fails, naming the sizes,
// when they do not fit the device's budget.
StatusOr<ModelWeights> copy_model_weights(const ModelWeights& weights, Device device);

// The dtype in which a checkpoint stores its matrices (the default for --dtype).
StatusOr<DType> source_matrix_dtype(WeightSource& source);

}  // namespace strata
