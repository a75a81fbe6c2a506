#include "worker/model/model_weights.h"

#include <cstring>
#include <new>
#include <vector>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <span>
#include <tuple>
#include <utility>

#include "common/check.h"
#include "kernels/device.h"
#include "worker/model/gguf_dequantize.h"

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

// Rows [src_row, src_row + rows) × columns [col, col + cols) of one checkpoint tensor
// whose full shape must be `shape`: one piece of a fused matrix (q|k|v, gate|up), a
// vocabulary shard, or a row-parallel slice of columns. 1-D tensors are one column wide.
struct TensorPart {
  WeightRole role;
  std::vector<int64_t> shape;
  int64_t src_row = 0, rows = 0, col = 0, cols = 0;
  bool rope_rows = false;  // q/k rows: reordered from rotate-half when the source uses it
};

class Builder {
 public:
  Builder(const ModelConfig& config, WeightSource& source, const WeightBuildOptions& options,
          const ShardPlan& shard)
      : config_(config), source_(source), options_(options), dtype_(options.dtype), shard_(shard) {}

  // Copies `part` into `dst` from row dst_row on, in dst's dtype. Source rows past the
  // tensor's end (vocabulary padding) are left zero.
  Status copy_part(const TensorPart& part, int layer, Tensor& dst, int64_t dst_row) {
    STRATA_ASSIGN_OR_RETURN(SourceTensor src, fetch(part, layer));
    if (src.gguf_type) return copy_widened_rows(src, part, dst, dst_row);
    if (src.dtype != DType::kF32 && src.dtype != DType::kBF16 && src.dtype != DType::kF16) {
      return unimplemented("{}: tensor `{}` has dtype {}; strata loads fp32, bf16 and fp16",
                           source_.description(), src.name, dtype_name(src.dtype));
    }
    const int64_t src_cols = part.shape.size() > 1 ? part.shape[1] : 1;
    if (!permutes(part) && part.col == 0 && part.cols == src_cols &&
        part.src_row + part.rows <= part.shape[0]) {
      convert_elements(src.data, src.dtype, part.src_row * src_cols, dst.raw(), dst.dtype(),
                       dst_row * part.cols, part.rows * part.cols);
      return ok_status();
    }
    for_each_row(part, [&](int64_t r, int64_t from) {
      convert_elements(src.data, src.dtype, from * src_cols + part.col, dst.raw(), dst.dtype(),
                       (dst_row + r) * part.cols, part.cols);
    });
    return ok_status();
  }

  StatusOr<Tensor> replicated(WeightRole role, int layer, int64_t n) {
    Tensor t = Tensor::empty(DType::kF32, {n});
    STRATA_RETURN_IF_ERROR(copy_part({role, {n}, 0, n, 0, 1}, layer, t, 0));
    return t;
  }

  TensorPart vocab_part(WeightRole role) const {
    const int64_t h = config_.hidden_size;
    return {role, {config_.vocab_size, h}, shard_.vocab_begin, shard_.vocab_rows, 0, h};
  }

  // This rank's vocabulary rows of the embedding or the LM head, padded with zeros.
  StatusOr<Tensor> vocab_rows(WeightRole role) {
    Tensor t = Tensor::empty(dtype_, {shard_.vocab_rows, config_.hidden_size});
    STRATA_RETURN_IF_ERROR(copy_part(vocab_part(role), 0, t, 0));
    return t;
  }

  // One matrix from its parts (stacked by rows), in `scheme`. A GGUF matrix whose parts are
  // all the scheme's own block type keeps the file's blocks as they are (no second
  // rounding); any other matrix is widened to the dense dtype and quantized by make_matrix.
  StatusOr<Matrix> matrix(std::span<const TensorPart> parts, int layer, Quantization scheme,
                          const std::string& name) {
    int64_t n = 0;
    for (const TensorPart& p : parts) n += p.rows;
    const int64_t k = parts[0].cols;
    STRATA_ASSIGN_OR_RETURN(const bool keep_blocks, parts_keep_blocks(parts, layer, scheme));
    if (keep_blocks) {
      const int64_t row_bytes = k / 32 * gguf::ggml_block_shape(native_blocks(scheme))->bytes;
      // Allocation zeroes it: vocabulary padding rows are zero blocks, which read as 0.
      Tensor blocks = Tensor::empty(DType::kU8, {n * row_bytes});
      int64_t row = 0;
      for (const TensorPart& p : parts) {
        STRATA_RETURN_IF_ERROR(copy_block_rows(p, layer, blocks, row, row_bytes));
        row += p.rows;
      }
      return make_matrix_from_blocks(blocks, scheme, n, k, options_.pack_for);
    }
    Tensor dense = Tensor::empty(dtype_, {n, k});
    int64_t row = 0;
    for (const TensorPart& p : parts) {
      STRATA_RETURN_IF_ERROR(copy_part(p, layer, dense, row));
      row += p.rows;
    }
    return make_matrix(std::move(dense), scheme, options_.pack_for, scratch_, name);
  }

  StatusOr<LayerWeights> layer(int l);

  // Hands every tensor fetched since the last call back to the source, which may drop its
  // pages: called after each layer, so the file is never resident all at once.
  void release_fetched() {
    for (const SourceTensor& t : fetched_) source_.release(t);
    fetched_.clear();
  }

 private:
  StatusOr<SourceTensor> fetch(const TensorPart& part, int layer) {
    STRATA_ASSIGN_OR_RETURN(SourceTensor src, source_.get(part.role, layer));
    fetched_.push_back(src);
    if (src.shape != part.shape) {
      return invalid_argument("{}: tensor `{}` has shape {}, expected {} for this config",
                              source_.description(), src.name, shape_str(src.shape),
                              shape_str(part.shape));
    }
    return src;
  }

  bool permutes(const TensorPart& part) const {
    return part.rope_rows && source_.rotate_half_layout();
  }

  // Calls fn(r, source row) for r = 0 .. rows − 1 while the source row exists.
  template <typename Fn>
  void for_each_row(const TensorPart& part, Fn&& fn) const {
    for (int64_t r = 0; r < part.rows; ++r) {
      int64_t from = part.src_row + r;
      if (from >= part.shape[0]) break;
      if (permutes(part)) from = adjacent_pair_source_row(from, config_.head_dim);
      fn(r, from);
    }
  }

  // A block-quantized tensor: each source row widened to fp32, then its columns converted.
  Status copy_widened_rows(const SourceTensor& src, const TensorPart& part, Tensor& dst,
                           int64_t dst_row) {
    const gguf::GgmlType type = *src.gguf_type;
    if (part.shape.size() != 2) {
      return unimplemented("{}: tensor `{}` is {}; strata reads 1-D tensors (norms, biases) in "
                           "F32, F16 or BF16 only", source_.description(), src.name,
                           gguf::ggml_type_name(type));
    }
    if (!can_dequantize(type)) {
      return unimplemented("{}: tensor `{}` is {}, which strata cannot read; re-quantize the "
                           "model to Q8_0, Q4_0, Q4_K, Q5_K or Q6_K (or F16/BF16)",
                           source_.description(), src.name, gguf::ggml_type_name(type));
    }
    const int64_t src_cols = part.shape[1];
    const int64_t row_bytes = src_cols / gguf::ggml_block_shape(type)->elements *
                              gguf::ggml_block_shape(type)->bytes;
    std::vector<float> row(static_cast<size_t>(src_cols));
    for_each_row(part, [&](int64_t r, int64_t from) {
      dequantize_gguf(type, static_cast<const uint8_t*>(src.data) + from * row_bytes, src_cols, row.data());
      convert_elements(row.data(), DType::kF32, part.col, dst.raw(), dst.dtype(),
                       (dst_row + r) * part.cols, part.cols);
    });
    return ok_status();
  }

  static gguf::GgmlType native_blocks(Quantization scheme) {
    return scheme == Quantization::kW8A8 ? gguf::GgmlType::kQ8_0 : gguf::GgmlType::kQ4_0;
  }

  StatusOr<bool> parts_keep_blocks(std::span<const TensorPart> parts, int layer, Quantization scheme) {
    if (scheme == Quantization::kNone) return false;
    for (const TensorPart& p : parts) {
      STRATA_ASSIGN_OR_RETURN(SourceTensor src, fetch(p, layer));
      if (src.gguf_type != native_blocks(scheme) || p.col % 32 != 0 || p.cols % 32 != 0) return false;
    }
    return true;
  }

  Status copy_block_rows(const TensorPart& part, int layer, Tensor& dst, int64_t dst_row,
                         int64_t row_bytes) {
    STRATA_ASSIGN_OR_RETURN(SourceTensor src, fetch(part, layer));
    const int64_t block_bytes = gguf::ggml_block_shape(*src.gguf_type)->bytes;
    const int64_t src_row_bytes = part.shape[1] / 32 * block_bytes;
    const auto* from_base = static_cast<const uint8_t*>(src.data) + part.col / 32 * block_bytes;
    for_each_row(part, [&](int64_t r, int64_t from) {
      std::memcpy(static_cast<uint8_t*>(dst.raw()) + (dst_row + r) * row_bytes,
                  from_base + from * src_row_bytes, static_cast<size_t>(row_bytes));
    });
    return ok_status();
  }

  const ModelConfig& config_;
  WeightSource& source_;
  const WeightBuildOptions& options_;
  DType dtype_;
  const ShardPlan& shard_;
  std::vector<char> scratch_;  // make_matrix's packing copy, reused across matrices
  std::vector<SourceTensor> fetched_;
};

// The scheme one matrix takes (see WeightBuildOptions): W8A8 leaves the o-projection dense
// (its input is not quantized), and a matrix the scheme cannot hold stays dense, said once.
Quantization matrix_scheme(Quantization scheme, bool is_wo, int64_t n, int64_t k,
                           const char* name, int layer) {
  if (scheme == Quantization::kW8A8 && is_wo) return Quantization::kNone;
  if (quantization_fits(scheme, n, k)) return scheme;
  if (layer == 0) {
    spdlog::warn("--quantization {}: {} [{}, {}] stays dense (the scheme needs {})",
                 quantization_name(scheme), name, n, k, quantization_shape_rule(scheme));
  }
  return Quantization::kNone;
}

StatusOr<LayerWeights> Builder::layer(int l) {
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
  const TensorPart qkv[] = {{WeightRole::kWq, {q, h}, q_begin, q_local, 0, h, true},
                            {WeightRole::kWk, {kv, h}, kv_begin, kv_local, 0, h, true},
                            {WeightRole::kWv, {kv, h}, kv_begin, kv_local, 0, h, false}};
  const TensorPart gate_up[] = {{WeightRole::kWGate, {ffn, h}, f_begin, f_local, 0, h},
                                {WeightRole::kWUp, {ffn, h}, f_begin, f_local, 0, h}};
  // Row parallel: the input columns matching this rank's heads and MLP columns.
  const TensorPart wo[] = {{WeightRole::kWo, {h, q}, 0, h, q_begin, q_local}};
  const TensorPart down[] = {{WeightRole::kWDown, {h, ffn}, 0, h, f_begin, f_local}};
  const std::tuple<std::span<const TensorPart>, Matrix*, const char*> matrices[] = {
      {qkv, &w.wqkv, "wqkv"}, {wo, &w.wo, "wo"}, {gate_up, &w.w_gate_up, "w_gate_up"},
      {down, &w.w_down, "w_down"}};
  for (auto [parts, m, name] : matrices) {
    int64_t n = 0;
    for (const TensorPart& p : parts) n += p.rows;
    const Quantization scheme = matrix_scheme(options_.quantization, m == &w.wo, n, parts[0].cols, name, l);
    STRATA_ASSIGN_OR_RETURN(*m, matrix(parts, l, scheme, fmt::format("layer {} {}", l, name)));
  }
  if (config_.attention_bias) {
    w.bqkv = Tensor::empty(DType::kF32, {q_local + 2 * kv_local});
    const TensorPart biases[] = {{WeightRole::kBq, {q}, q_begin, q_local, 0, 1, true},
                                 {WeightRole::kBk, {kv}, kv_begin, kv_local, 0, 1, true},
                                 {WeightRole::kBv, {kv}, kv_begin, kv_local, 0, 1, false}};
    int64_t row = 0;
    for (const TensorPart& p : biases) {
      STRATA_RETURN_IF_ERROR(copy_part(p, l, w.bqkv, row));
      row += p.rows;
    }
  }
  return w;
}

// The LM head in the layers' scheme when its shape allows (W8A8's input is the final norm's
// int8 rows), else dense. A dense tied table is packed once for the LM head's gemm (the
// embedding lookup reads either layout); a quantized one is quantized from a copy, the
// lookup keeping the dense rows. An untied head is built like a layer matrix, so a GGUF
// Q8_0 / Q4_0 head keeps its blocks.
Status finish_lm_head(ModelWeights& w, const ModelConfig& config, Builder& builder,
                      const WeightBuildOptions& options, std::vector<char>& scratch) {
  const bool tied = config.tie_word_embeddings;
  Quantization scheme = options.quantization;
  const TensorPart head = builder.vocab_part(WeightRole::kLmHead);
  if (!quantization_fits(scheme, head.rows, head.cols)) scheme = Quantization::kNone;
  if (!tied) {
    STRATA_ASSIGN_OR_RETURN(w.lm_head, builder.matrix({&head, 1}, 0, scheme, "lm_head"));
    return ok_status();
  }
  STRATA_ASSIGN_OR_RETURN(w.lm_head, make_matrix(w.embedding, scheme, options.pack_for, scratch, "lm_head"));
  if (scheme == Quantization::kNone) w.embedding_layout = w.lm_head.layout;
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
  Builder builder(config, source, options, shard);
  ModelWeights w;
  w.dtype = dtype;
  w.quantization = options.quantization;
  w.shard = shard;
  // The embedding lives on the first stage, and on the last too when it is the LM head.
  if (shard.first_stage || (shard.last_stage && config.tie_word_embeddings)) {
    STRATA_ASSIGN_OR_RETURN(w.embedding, builder.vocab_rows(WeightRole::kEmbedding));
    builder.release_fetched();
  }
  w.layers.reserve(static_cast<size_t>(shard.num_layers()));
  std::vector<char> pack_scratch;
  for (int l = shard.layers.begin; l < shard.layers.end; ++l) {
    STRATA_ASSIGN_OR_RETURN(LayerWeights layer, builder.layer(l));
    w.layers.push_back(std::move(layer));
    builder.release_fetched();
  }
  if (shard.last_stage) {
    STRATA_ASSIGN_OR_RETURN(w.final_norm, builder.replicated(WeightRole::kFinalNorm, 0, config.hidden_size));
    STRATA_RETURN_IF_ERROR(finish_lm_head(w, config, builder, options, pack_scratch));
    builder.release_fetched();
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
