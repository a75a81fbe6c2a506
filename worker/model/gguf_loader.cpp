// GGUF model files (llama.cpp's format) of the `llama` architecture (Llama 2/3, TinyLlama,
// Mistral) and `qwen2`: the config from `{arch}.*` metadata, tensors by GGUF's names.
// llama.cpp's converter stores llama q/k rows in adjacent-pair order (it undoes HF's
// rotate-half permutation, as strata's RoPE wants); qwen2 runs rotate-half RoPE in
// llama.cpp, so its rows stay as HF wrote them and are reordered here as for safetensors.
#include <algorithm>
#include <filesystem>
#include <map>

#include <spdlog/spdlog.h>

#include "common/gguf/gguf_file.h"
#include "worker/model/gguf_dequantize.h"
#include "worker/model/gguf_loader.h"
#include "worker/model/model_loader.h"

namespace strata {
namespace {

using gguf::GgmlType;

class GgufSource final : public WeightSource {
 public:
  GgufSource(const gguf::GgufFile& file, bool rotate_half) : file_(file), rotate_half_(rotate_half) {}

  StatusOr<SourceTensor> get(WeightRole role, int layer) override {
    const std::string name = tensor_name(role, layer);
    const gguf::TensorInfo* t = file_.find_tensor(name);
    if (t == nullptr) return not_found("{}: tensor `{}` is missing", file_.path(), name);
    SourceTensor s{.name = name, .data = t->data, .shape = t->shape(), .nbytes = t->nbytes};
    switch (t->type) {
      case GgmlType::kF32: s.dtype = DType::kF32; break;
      case GgmlType::kF16: s.dtype = DType::kF16; break;
      case GgmlType::kBF16: s.dtype = DType::kBF16; break;
      default: s.gguf_type = t->type;
    }
    return s;
  }
  bool rotate_half_layout() const override { return rotate_half_; }
  std::string description() const override { return file_.path(); }
  void release(const SourceTensor& t) override {
    if (const gguf::TensorInfo* info = file_.find_tensor(t.name)) file_.release(*info);
  }

  static std::string tensor_name(WeightRole role, int l) {
    const std::string p = fmt::format("blk.{}.", l);
    switch (role) {
      case WeightRole::kEmbedding: return "token_embd.weight";
      case WeightRole::kAttnNorm: return p + "attn_norm.weight";
      case WeightRole::kWq: return p + "attn_q.weight";
      case WeightRole::kWk: return p + "attn_k.weight";
      case WeightRole::kWv: return p + "attn_v.weight";
      case WeightRole::kBq: return p + "attn_q.bias";
      case WeightRole::kBk: return p + "attn_k.bias";
      case WeightRole::kBv: return p + "attn_v.bias";
      case WeightRole::kWo: return p + "attn_output.weight";
      case WeightRole::kFfnNorm: return p + "ffn_norm.weight";
      case WeightRole::kWGate: return p + "ffn_gate.weight";
      case WeightRole::kWUp: return p + "ffn_up.weight";
      case WeightRole::kWDown: return p + "ffn_down.weight";
      case WeightRole::kFinalNorm: return "output_norm.weight";
      case WeightRole::kLmHead: return "output.weight";
    }
    return "";
  }

 private:
  const gguf::GgufFile& file_;
  bool rotate_half_;
};

// RoPE scaling: `{arch}.rope.scaling.type` linear, or llama.cpp's rope_freqs.weight
// factors (Llama 3.1); YaRN and the rest are refused by name.
Status read_rope_scaling(const gguf::GgufFile& f, const std::string& arch, ModelConfig& c) {
  STRATA_ASSIGN_OR_RETURN(const std::string type, f.get_string_or(arch + ".rope.scaling.type", "none"));
  if (type == "linear") {
    c.rope_scaling.type = "linear";
    STRATA_ASSIGN_OR_RETURN(c.rope_scaling.factor, f.get_float(arch + ".rope.scaling.factor"));
  } else if (type != "none") {
    return unimplemented("{}: `{}.rope.scaling.type` \"{}\" is not supported (none, linear, or "
                         "rope_freqs.weight factors)", f.path(), arch, type);
  }
  const gguf::TensorInfo* factors = f.find_tensor("rope_freqs.weight");
  if (factors == nullptr) return ok_status();
  if (factors->type != GgmlType::kF32 || factors->numel() != c.head_dim / 2) {
    return invalid_argument("{}: tensor `rope_freqs.weight` must be F32 with head_dim / 2 = {} "
                            "values; it is {} with {}", f.path(), c.head_dim / 2,
                            gguf::ggml_type_name(factors->type), factors->numel());
  }
  const auto* values = reinterpret_cast<const float*>(factors->data);
  c.rope_scaling.freq_factors.assign(values, values + factors->numel());
  return ok_status();
}

StatusOr<int> read_count(const gguf::GgufFile& f, const std::string& key) {
  STRATA_ASSIGN_OR_RETURN(const int64_t v, f.get_int(key));
  if (v <= 0 || v > (1 << 20)) return invalid_argument("{}: `{}` is {}, not a count", f.path(), key, v);
  return static_cast<int>(v);
}

}  // namespace

StatusOr<ModelConfig> read_gguf_config(const gguf::GgufFile& f) {
  STRATA_ASSIGN_OR_RETURN(const std::string arch, f.get_string("general.architecture"));
  if (arch != "llama" && arch != "qwen2") {
    return unimplemented("{}: `general.architecture` is \"{}\"; strata runs llama (Llama 2/3, "
                         "TinyLlama, Mistral) and qwen2", f.path(), arch);
  }
  ModelConfig c;
  c.architecture = arch;
  STRATA_ASSIGN_OR_RETURN(c.name, f.get_string_or("general.name", std::filesystem::path(f.path()).stem().string()));
  STRATA_ASSIGN_OR_RETURN(c.max_position_embeddings, f.get_int(arch + ".context_length"));
  STRATA_ASSIGN_OR_RETURN(c.hidden_size, f.get_int(arch + ".embedding_length"));
  STRATA_ASSIGN_OR_RETURN(c.intermediate_size, f.get_int(arch + ".feed_forward_length"));
  STRATA_ASSIGN_OR_RETURN(c.num_layers, read_count(f, arch + ".block_count"));
  STRATA_ASSIGN_OR_RETURN(c.num_heads, read_count(f, arch + ".attention.head_count"));
  c.num_kv_heads = c.num_heads;
  if (f.contains(arch + ".attention.head_count_kv")) {
    STRATA_ASSIGN_OR_RETURN(c.num_kv_heads, read_count(f, arch + ".attention.head_count_kv"));
  }
  STRATA_ASSIGN_OR_RETURN(const int64_t head_dim,
                          f.get_int_or(arch + ".attention.key_length", c.hidden_size / c.num_heads));
  c.head_dim = static_cast<int>(head_dim);
  STRATA_ASSIGN_OR_RETURN(const double eps, f.get_float_or(arch + ".attention.layer_norm_rms_epsilon", 1e-5));
  c.rms_norm_eps = static_cast<float>(eps);
  STRATA_ASSIGN_OR_RETURN(c.rope_theta, f.get_float_or(arch + ".rope.freq_base", 10000.0));
  STRATA_RETURN_IF_ERROR(read_rope_scaling(f, arch, c));
  const gguf::TensorInfo* embedding = f.find_tensor("token_embd.weight");
  if (embedding == nullptr) return not_found("{}: tensor `token_embd.weight` is missing", f.path());
  c.vocab_size = embedding->shape()[0];
  c.tie_word_embeddings = f.find_tensor("output.weight") == nullptr;
  c.attention_bias = f.find_tensor("blk.0.attn_q.bias") != nullptr;
  if (f.contains("tokenizer.ggml.bos_token_id")) {
    STRATA_ASSIGN_OR_RETURN(const int64_t bos, f.get_int("tokenizer.ggml.bos_token_id"));
    c.bos_token_id = static_cast<int32_t>(bos);
  }
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"}) {
    if (!f.contains(key)) continue;
    STRATA_ASSIGN_OR_RETURN(const int64_t id, f.get_int(key));
    if (std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), id) == c.eos_token_ids.end()) {
      c.eos_token_ids.push_back(static_cast<int32_t>(id));
    }
  }
  STRATA_RETURN_IF_ERROR(c.validate(f.path()));
  return c;
}

std::unique_ptr<WeightSource> make_gguf_weight_source(const gguf::GgufFile& file,
                                                      const ModelConfig& config) {
  return std::make_unique<GgufSource>(file, config.architecture == "qwen2");
}

namespace {

// The layers' storage: the scheme `auto` picks, the dense dtype, and one log line saying
// what happens to each tensor type the file holds.
struct Storage {
  Quantization scheme = Quantization::kNone;
  DType dtype = DType::kBF16;
};

StatusOr<Storage> choose_storage(const gguf::GgufFile& f, const ModelLoadOptions& options) {
  const gguf::TensorInfo* wq = f.find_tensor("blk.0.attn_q.weight");
  if (wq == nullptr) return not_found("{}: tensor `blk.0.attn_q.weight` is missing", f.path());
  Storage s;
  const GgmlType layer_type = wq->type;
  if (layer_type == GgmlType::kF32) s.dtype = DType::kF32;
  if (layer_type == GgmlType::kF16) s.dtype = DType::kF16;
  if (options.dtype) s.dtype = *options.dtype;
  if (options.quantization) {
    s.scheme = *options.quantization;
  } else if (layer_type == GgmlType::kQ8_0) {
    s.scheme = Quantization::kW8A8;
  } else if (layer_type == GgmlType::kQ4_0) {
    s.scheme = Quantization::kW4A16;
  }
  std::map<std::string, int> counts;
  for (const gguf::TensorInfo& t : f.tensors()) ++counts[gguf::ggml_type_name(t.type)];
  std::string types;
  for (const auto& [name, n] : counts) types += fmt::format("{}{} × {}", types.empty() ? "" : ", ", n, name);
  const char* native = s.scheme == Quantization::kW8A8 ? "Q8_0" : "Q4_0";
  spdlog::info("{}: tensors {}; layer matrices run as {} ({} blocks kept as they are), other "
               "quantized tensors are widened to {} at load",
               f.path(), types, quantization_name(s.scheme),
               s.scheme == Quantization::kNone ? "no" : native, dtype_name(s.dtype));
  return s;
}

}  // namespace

StatusOr<std::unique_ptr<LoadedModel>> load_gguf_model(const std::string& path,
                                                       const ModelLoadOptions& options) {
  STRATA_ASSIGN_OR_RETURN(const gguf::GgufFile file, gguf::GgufFile::open(path));
  auto model = std::make_unique<LoadedModel>();
  STRATA_ASSIGN_OR_RETURN(model->config, read_gguf_config(file));
  const ModelConfig& c = model->config;
  STRATA_ASSIGN_OR_RETURN(const Storage storage, choose_storage(file, options));
  const std::unique_ptr<WeightSource> source = make_gguf_weight_source(file, c);
  STRATA_ASSIGN_OR_RETURN(const ShardPlan shard, ShardPlan::make(c, options.topology));
  WeightBuildOptions build = options.build_options(storage.dtype);
  build.quantization = storage.scheme;
  STRATA_ASSIGN_OR_RETURN(model->weights, build_model_weights(c, *source, build, shard));
  model->format = "gguf";
  model->default_tokenizer = path;
  model->stop_token_ids = c.eos_token_ids;
  return model;
}

}  // namespace strata
