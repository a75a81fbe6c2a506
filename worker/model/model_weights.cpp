#include "worker/model/model_weights.h"

#include <cstring>
#include <new>
#include <vector>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "common/check.h"
#include "kernels/device.h"

namespace strata {

size_t ModelWeights::bytes() const {
  size_t total = (embedding.defined() ? embedding.nbytes() : 0) + (final_norm.defined() ? final_norm.nbytes() : 0);
  if (lm_head.defined() && lm_head.data.raw() != embedding.raw()) total += lm_head.nbytes();
  for (const LayerWeights& l : layers) {
    total += l.attn_norm.nbytes() + l.wqkv.nbytes() + l.wo.nbytes() + l.ffn_norm.nbytes() +
             l.w_gate_up.nbytes() + l.w_down.nbytes() + (l.bqkv.defined() ? l.bqkv.nbytes() : 0);
  }
  return total;
}

namespace {

float load_as_f32(const void* data, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::kF32: return static_cast<const float*>(data)[i];
    case DType::kBF16: return bf16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case DType::kF16: return f16_to_f32(static_cast<const uint16_t*>(data)[i]);
    default: STRATA_CHECK(false);
  }
  return 0.0f;
}

// Copies `count` elements from src (src_dtype) into dst (dst_dtype) at element offsets.
void convert_elements(const void* src, DType src_dtype, int64_t src_offset, void* dst,
                      DType dst_dtype, int64_t dst_offset, int64_t count) {
  if (src_dtype == dst_dtype) {
    const size_t size = dtype_size(src_dtype);
    std::memcpy(static_cast<char*>(dst) + dst_offset * size,
                static_cast<const char*>(src) + src_offset * size, count * size);
    return;
  }
  for (int64_t i = 0; i < count; ++i) {
    const float v = load_as_f32(src, src_dtype, src_offset + i);
    switch (dst_dtype) {
      case DType::kF32: static_cast<float*>(dst)[dst_offset + i] = v; break;
      case DType::kBF16: static_cast<uint16_t*>(dst)[dst_offset + i] = f32_to_bf16(v); break;
      case DType::kF16: static_cast<uint16_t*>(dst)[dst_offset + i] = f32_to_f16(v); break;
      default: STRATA_CHECK(false);
    }
  }
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", shape[i]);
  return s + "]";
}

// Row order that turns HF's rotate-half layout into adjacent pairs: within each head,
// stored row j < d/2 holds the first element of pair j, row j + d/2 the second.
int64_t adjacent_pair_source_row(int64_t row, int head_dim) {
  const int64_t head = row / head_dim;
  const int64_t within = row % head_dim;
  const int64_t pair = within / 2;
  return head * head_dim + (within % 2 == 0 ? pair : pair + head_dim / 2);
}

class Builder {
 public:
  Builder(const ModelConfig& config, WeightSource& source, DType dtype, const ShardPlan& shard)
      : config_(config), source_(source), dtype_(dtype), shard_(shard) {}

  // Copies rows [src_row, src_row + rows) × columns [col, col + cols) of `role`, whose full
  // shape must be `shape`, into `dst` from row dst_row on. Source rows past the tensor's end
  // (vocabulary padding) are left zero. 1-D tensors are one column wide.
  Status copy_block(WeightRole role, int layer, const std::vector<int64_t>& shape, Tensor& dst,
                    int64_t dst_row, int64_t src_row, int64_t rows, int64_t col, int64_t cols,
                    bool permute_rows_for_rope) {
    STRATA_ASSIGN_OR_RETURN(SourceTensor src, source_.get(role, layer));
    if (src.shape != shape) {
      return invalid_argument("{}: tensor `{}` has shape {}, expected {} for this config",
                              source_.description(), src.name, shape_str(src.shape),
                              shape_str(shape));
    }
    if (src.dtype != DType::kF32 && src.dtype != DType::kBF16 && src.dtype != DType::kF16) {
      return unimplemented("{}: tensor `{}` has dtype {}; strata loads fp32, bf16 and fp16",
                           source_.description(), src.name, dtype_name(src.dtype));
    }
    const int64_t src_cols = shape.size() > 1 ? shape[1] : 1;
    const bool permute = permute_rows_for_rope && source_.rotate_half_layout();
    if (!permute && col == 0 && cols == src_cols && src_row + rows <= shape[0]) {
      convert_elements(src.data, src.dtype, src_row * src_cols, dst.raw(), dst.dtype(),
                       dst_row * cols, rows * cols);
      return ok_status();
    }
    for (int64_t r = 0; r < rows; ++r) {
      int64_t from = src_row + r;
      if (from >= shape[0]) break;
      if (permute) from = adjacent_pair_source_row(from, config_.head_dim);
      convert_elements(src.data, src.dtype, from * src_cols + col, dst.raw(), dst.dtype(),
                       (dst_row + r) * cols, cols);
    }
    return ok_status();
  }

  StatusOr<Tensor> replicated(WeightRole role, int layer, int64_t n) {
    Tensor t = Tensor::empty(DType::kF32, {n});
    STRATA_RETURN_IF_ERROR(copy_block(role, layer, {n}, t, 0, 0, n, 0, 1, false));
    return t;
  }

  // This rank's vocabulary rows of the embedding or the LM head, padded with zeros.
  StatusOr<Tensor> vocab_rows(WeightRole role) {
    const int64_t h = config_.hidden_size;
    Tensor t = Tensor::empty(dtype_, {shard_.vocab_rows, h});
    STRATA_RETURN_IF_ERROR(copy_block(role, 0, {config_.vocab_size, h}, t, 0, shard_.vocab_begin,
                                      shard_.vocab_rows, 0, h, false));
    return t;
  }

  StatusOr<LayerWeights> layer(int l) {
    const int hd = config_.head_dim;
    const int64_t h = config_.hidden_size, q = config_.q_size(), kv = config_.kv_size();
    const int64_t ffn = config_.intermediate_size;
    const int64_t q_local = shard_.q_size(hd), kv_local = shard_.kv_size(hd);
    const int64_t q_begin = q_local * shard_.tp_rank, kv_begin = int64_t{shard_.kv_head_begin} * hd;
    const int64_t f_local = shard_.ffn_size(), f_begin = shard_.ffn_begin;
    LayerWeights w;
    STRATA_ASSIGN_OR_RETURN(w.attn_norm, replicated(WeightRole::kAttnNorm, l, h));
    STRATA_ASSIGN_OR_RETURN(w.ffn_norm, replicated(WeightRole::kFfnNorm, l, h));
    // Column parallel: this rank's query heads, KV heads, and MLP columns.
    Tensor& wqkv = w.wqkv.data = Tensor::empty(dtype_, {q_local + 2 * kv_local, h});
    STRATA_RETURN_IF_ERROR(copy_block(WeightRole::kWq, l, {q, h}, wqkv, 0, q_begin, q_local, 0, h, true));
    STRATA_RETURN_IF_ERROR(copy_block(WeightRole::kWk, l, {kv, h}, wqkv, q_local, kv_begin, kv_local, 0, h, true));
    STRATA_RETURN_IF_ERROR(copy_block(WeightRole::kWv, l, {kv, h}, wqkv, q_local + kv_local, kv_begin, kv_local, 0, h, false));
    if (config_.attention_bias) {
      w.bqkv = Tensor::empty(DType::kF32, {q_local + 2 * kv_local});
      STRATA_RETURN_IF_ERROR(copy_block(WeightRole::kBq, l, {q}, w.bqkv, 0, q_begin, q_local, 0, 1, true));
      STRATA_RETURN_IF_ERROR(copy_block(WeightRole::kBk, l, {kv}, w.bqkv, q_local, kv_begin, kv_local, 0, 1, true));
      STRATA_RETURN_IF_ERROR(copy_block(WeightRole::kBv, l, {kv}, w.bqkv, q_local + kv_local, kv_begin, kv_local, 0, 1, false));
    }
    Tensor& gate_up = w.w_gate_up.data = Tensor::empty(dtype_, {2 * f_local, h});
    STRATA_RETURN_IF_ERROR(copy_block(WeightRole::kWGate, l, {ffn, h}, gate_up, 0, f_begin, f_local, 0, h, false));
    STRATA_RETURN_IF_ERROR(copy_block(WeightRole::kWUp, l, {ffn, h}, gate_up, f_local, f_begin, f_local, 0, h, false));
    // Row parallel: the input columns matching this rank's heads and MLP columns.
    Tensor& wo = w.wo.data = Tensor::empty(dtype_, {h, q_local});
    STRATA_RETURN_IF_ERROR(copy_block(WeightRole::kWo, l, {h, q}, wo, 0, 0, h, q_begin, q_local, false));
    Tensor& down = w.w_down.data = Tensor::empty(dtype_, {h, f_local});
    STRATA_RETURN_IF_ERROR(copy_block(WeightRole::kWDown, l, {h, ffn}, down, 0, 0, h, f_begin, f_local, false));
    return w;
  }

 private:
  const ModelConfig& config_;
  WeightSource& source_;
  DType dtype_;
  const ShardPlan& shard_;
};

// The layer matrices in the form the forward pass multiplies by (see WeightBuildOptions
// for which take the quantization); a matrix the scheme cannot hold stays dense.
Status finish_layer_matrices(LayerWeights& layer, int l, const WeightBuildOptions& options,
                             std::vector<char>& scratch) {
  const bool w8a8 = options.quantization == Quantization::kW8A8;
  const std::pair<Matrix*, const char*> matrices[] = {
      {&layer.wqkv, "wqkv"}, {&layer.wo, "wo"}, {&layer.w_gate_up, "w_gate_up"}, {&layer.w_down, "w_down"}};
  for (auto [m, name] : matrices) {
    Quantization scheme = options.quantization;
    if (w8a8 && m == &layer.wo) scheme = Quantization::kNone;
    if (!quantization_fits(scheme, m->data.dim(0), m->data.dim(1))) {
      if (l == 0) {
        spdlog::warn("--quantization {}: {} [{}, {}] stays {} (the scheme needs {})",
                     quantization_name(scheme), name, m->data.dim(0), m->data.dim(1),
                     dtype_name(m->data.dtype()), quantization_shape_rule(scheme));
      }
      scheme = Quantization::kNone;
    }
    STRATA_ASSIGN_OR_RETURN(*m, make_matrix(std::move(m->data), scheme, options.pack_for, scratch,
                                            fmt::format("layer {} {}", l, name)));
  }
  return ok_status();
}

// The LM head in the layers' scheme when its shape allows (W8A8's input is the final norm's
// int8 rows), else dense. A dense tied table is packed
// once for the LM head's gemm (the embedding lookup reads either layout); a quantized one
// is quantized from a copy, the lookup keeping the dense rows.
Status finish_lm_head(ModelWeights& w, const ModelConfig& config, Builder& builder,
                      const WeightBuildOptions& options, std::vector<char>& scratch) {
  const bool tied = config.tie_word_embeddings;
  Tensor dense;
  if (tied) {
    dense = w.embedding;
  } else {
    STRATA_ASSIGN_OR_RETURN(dense, builder.vocab_rows(WeightRole::kLmHead));
  }
  Quantization scheme = options.quantization;
  if (!quantization_fits(scheme, dense.dim(0), dense.dim(1))) scheme = Quantization::kNone;
  STRATA_ASSIGN_OR_RETURN(w.lm_head, make_matrix(std::move(dense), scheme, options.pack_for,
                                                 scratch, "lm_head"));
  if (tied && scheme == Quantization::kNone) w.embedding_layout = w.lm_head.layout;
  return ok_status();
}

}  // namespace

StatusOr<ModelWeights> build_model_weights(const ModelConfig& config, WeightSource& source,
                                           const WeightBuildOptions& options,
                                           const ShardPlan& shard) {
  const DType dtype = options.dtype;
  if (dtype != DType::kF32 && dtype != DType::kBF16 && dtype != DType::kF16) {
    return invalid_argument("weight dtype must be fp32, bf16 or fp16. Given: {}", dtype_name(dtype));
  }
  Builder builder(config, source, dtype, shard);
  ModelWeights w;
  w.dtype = dtype;
  w.quantization = options.quantization;
  w.shard = shard;
  // The embedding lives on the first stage, and on the last too when it is the LM head.
  if (shard.first_stage || (shard.last_stage && config.tie_word_embeddings)) {
    STRATA_ASSIGN_OR_RETURN(w.embedding, builder.vocab_rows(WeightRole::kEmbedding));
  }
  w.layers.reserve(static_cast<size_t>(shard.num_layers()));
  std::vector<char> pack_scratch;
  for (int l = shard.layers.begin; l < shard.layers.end; ++l) {
    STRATA_ASSIGN_OR_RETURN(LayerWeights layer, builder.layer(l));
    STRATA_RETURN_IF_ERROR(finish_layer_matrices(layer, l, options, pack_scratch));
    w.layers.push_back(std::move(layer));
  }
  if (shard.last_stage) {
    const kernels::KernelBackend* pack_for = options.pack_for;
    STRATA_ASSIGN_OR_RETURN(w.final_norm, builder.replicated(WeightRole::kFinalNorm, 0, config.hidden_size));
    STRATA_RETURN_IF_ERROR(finish_lm_head(w, config, builder, options, pack_scratch));
  }
  return w;
}

StatusOr<ModelWeights> build_model_weights(const ModelConfig& config, WeightSource& source,
                                           const WeightBuildOptions& options) {
  return build_model_weights(config, source, options, ShardPlan::full(config));
}

StatusOr<ModelWeights> copy_model_weights(const ModelWeights& weights, Device device) {
  const bool packed_matrix = std::any_of(weights.layers.begin(), weights.layers.end(), [](const LayerWeights& l) {
    return l.wqkv.layout != kernels::WeightLayout::kRowMajor ||
           l.wqkv.int4_layout != kernels::Int4Layout::kBlocks;
  });
  if (packed_matrix || weights.lm_head.layout != kernels::WeightLayout::kRowMajor ||
      weights.lm_head.int4_layout != kernels::Int4Layout::kBlocks ||
      weights.embedding_layout != kernels::WeightLayout::kRowMajor) {
    return invalid_argument("weights packed for the CPU cannot move to {}; load them with "
                            "--device {}", device.to_string(), device.to_string());
  }
  const kernels::KernelBackend& backend = backend_for(device);
  auto copy = [&](const Tensor& t) {
    if (!t.defined()) return t;
    Tensor d = Tensor::empty(t.dtype(), t.shape(), device);
    backend.copy({.dst = d.raw(), .src = t.raw(), .row_bytes = static_cast<int64_t>(t.nbytes()),
                  .kind = kernels::CopyKind::kHostToDevice});
    return d;
  };
  ModelWeights w = weights;
  w.device = device;
  try {
    w.embedding = copy(weights.embedding);
    for (LayerWeights& l : w.layers) {
      for (Tensor* t : {&l.attn_norm, &l.bqkv, &l.ffn_norm}) *t = copy(*t);
      for (Matrix* m : {&l.wqkv, &l.wo, &l.w_gate_up, &l.w_down}) {
        for (Tensor* t : m->tensors()) *t = copy(*t);
      }
    }
    w.final_norm = copy(weights.final_norm);
    const bool tied = weights.lm_head.defined() && weights.lm_head.data.raw() == weights.embedding.raw();
    if (tied) {
      w.lm_head.data = w.embedding;
    } else {
      for (Tensor* t : w.lm_head.tensors()) *t = copy(*t);
    }
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kResourceExhausted,
                  fmt::format("the weights ({:.2f} GiB) do not fit {}'s budget; raise "
                              "--gpu-memory-fraction, use --dtype bf16, or shard the model",
                              static_cast<double>(weights.bytes()) / (1 << 30),
                              device.to_string()));
  }
  backend.synchronize();
  return w;
}

StatusOr<DType> source_matrix_dtype(WeightSource& source) {
  STRATA_ASSIGN_OR_RETURN(SourceTensor t, source.get(WeightRole::kWq, 0));
  return t.dtype;
}

}  // namespace strata
