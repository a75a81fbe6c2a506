#include "worker/model_weights.h"

#include <cstring>

#include "common/check.h"

namespace strata {

size_t ModelWeights::bytes() const {
  size_t total = embedding.nbytes() + final_norm.nbytes();
  if (lm_head.defined() && lm_head.raw() != embedding.raw()) total += lm_head.nbytes();
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
  Builder(const ModelConfig& config, WeightSource& source, DType dtype)
      : config_(config), source_(source), dtype_(dtype) {}

  // Fetches `role`, checks it is `shape`, and copies it into rows [row_offset, ...) of dst.
  Status copy_into(WeightRole role, int layer, const std::vector<int64_t>& shape, Tensor& dst,
                   int64_t row_offset, bool permute_rows_for_rope) {
    STRATA_ASSIGN_OR_RETURN(SourceTensor src, source_.get(role, layer));
    std::vector<int64_t> squeezed = src.shape;
    if (squeezed != shape) {
      return invalid_argument("{}: tensor `{}` has shape {}, expected {} for this config",
                              source_.description(), src.name, shape_str(src.shape),
                              shape_str(shape));
    }
    if (src.dtype != DType::kF32 && src.dtype != DType::kBF16 && src.dtype != DType::kF16) {
      return unimplemented("{}: tensor `{}` has dtype {}; strata loads fp32, bf16 and fp16",
                           source_.description(), src.name, dtype_name(src.dtype));
    }
    const int64_t rows = shape[0];
    const int64_t cols = shape.size() > 1 ? shape[1] : 1;
    const bool permute = permute_rows_for_rope && source_.rotate_half_layout();
    if (!permute) {
      convert_elements(src.data, src.dtype, 0, dst.raw(), dst.dtype(), row_offset * cols,
                       rows * cols);
      return ok_status();
    }
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t from = adjacent_pair_source_row(r, config_.head_dim);
      convert_elements(src.data, src.dtype, from * cols, dst.raw(), dst.dtype(),
                       (row_offset + r) * cols, cols);
    }
    return ok_status();
  }

  StatusOr<Tensor> single(WeightRole role, int layer, std::vector<int64_t> shape, DType dtype) {
    Tensor t = Tensor::empty(dtype, shape);
    STRATA_RETURN_IF_ERROR(copy_into(role, layer, shape, t, 0, false));
    return t;
  }

  StatusOr<LayerWeights> layer(int l) {
    const int64_t h = config_.hidden_size, q = config_.q_size(), kv = config_.kv_size();
    const int64_t ffn = config_.intermediate_size;
    LayerWeights w;
    STRATA_ASSIGN_OR_RETURN(w.attn_norm, single(WeightRole::kAttnNorm, l, {h}, DType::kF32));
    STRATA_ASSIGN_OR_RETURN(w.ffn_norm, single(WeightRole::kFfnNorm, l, {h}, DType::kF32));
    w.wqkv = Tensor::empty(dtype_, {q + 2 * kv, h});
    STRATA_RETURN_IF_ERROR(copy_into(WeightRole::kWq, l, {q, h}, w.wqkv, 0, true));
    STRATA_RETURN_IF_ERROR(copy_into(WeightRole::kWk, l, {kv, h}, w.wqkv, q, true));
    STRATA_RETURN_IF_ERROR(copy_into(WeightRole::kWv, l, {kv, h}, w.wqkv, q + kv, false));
    if (config_.attention_bias) {
      w.bqkv = Tensor::empty(DType::kF32, {q + 2 * kv});
      STRATA_RETURN_IF_ERROR(copy_into(WeightRole::kBq, l, {q}, w.bqkv, 0, true));
      STRATA_RETURN_IF_ERROR(copy_into(WeightRole::kBk, l, {kv}, w.bqkv, q, true));
      STRATA_RETURN_IF_ERROR(copy_into(WeightRole::kBv, l, {kv}, w.bqkv, q + kv, false));
    }
    STRATA_ASSIGN_OR_RETURN(w.wo, single(WeightRole::kWo, l, {h, q}, dtype_));
    w.w_gate_up = Tensor::empty(dtype_, {2 * ffn, h});
    STRATA_RETURN_IF_ERROR(copy_into(WeightRole::kWGate, l, {ffn, h}, w.w_gate_up, 0, false));
    STRATA_RETURN_IF_ERROR(copy_into(WeightRole::kWUp, l, {ffn, h}, w.w_gate_up, ffn, false));
    STRATA_ASSIGN_OR_RETURN(w.w_down, single(WeightRole::kWDown, l, {h, ffn}, dtype_));
    return w;
  }

 private:
  const ModelConfig& config_;
  WeightSource& source_;
  DType dtype_;
};

}  // namespace

StatusOr<ModelWeights> build_model_weights(const ModelConfig& config, WeightSource& source,
                                           DType dtype) {
  if (dtype != DType::kF32 && dtype != DType::kBF16 && dtype != DType::kF16) {
    return invalid_argument("weight dtype must be fp32, bf16 or fp16. Given: {}", dtype_name(dtype));
  }
  Builder builder(config, source, dtype);
  ModelWeights w;
  w.dtype = dtype;
  const int64_t h = config.hidden_size, vocab = config.vocab_size;
  STRATA_ASSIGN_OR_RETURN(w.embedding, builder.single(WeightRole::kEmbedding, 0, {vocab, h}, dtype));
  w.layers.reserve(static_cast<size_t>(config.num_layers));
  for (int l = 0; l < config.num_layers; ++l) {
    STRATA_ASSIGN_OR_RETURN(LayerWeights layer, builder.layer(l));
    w.layers.push_back(std::move(layer));
  }
  STRATA_ASSIGN_OR_RETURN(w.final_norm, builder.single(WeightRole::kFinalNorm, 0, {h}, DType::kF32));
  if (config.tie_word_embeddings) {
    w.lm_head = w.embedding;
  } else {
    STRATA_ASSIGN_OR_RETURN(w.lm_head, builder.single(WeightRole::kLmHead, 0, {vocab, h}, dtype));
  }
  return w;
}

StatusOr<DType> source_matrix_dtype(WeightSource& source) {
  STRATA_ASSIGN_OR_RETURN(SourceTensor t, source.get(WeightRole::kWq, 0));
  return t.dtype;
}

}  // namespace strata
