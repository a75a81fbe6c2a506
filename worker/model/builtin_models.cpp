#include "worker/model/builtin_models.h"

#include <cmath>
#include <memory>

#include "worker/model/model_loader.h"

namespace strata {
namespace {

ModelConfig make_config(std::string name, int64_t vocab, int64_t hidden, int64_t ffn, int layers,
                        int heads, int kv_heads, int64_t context, bool tied) {
  ModelConfig c = make_llama_config("builtin:" + name, vocab, hidden, ffn, layers, heads, kv_heads,
                                    context, tied);
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  return c;
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform weights with unit-variance outputs for unit-variance inputs (±sqrt(3 / fan_in)),
// norms at 1: activations stay in a realistic range through every layer. Each element is a
// hash of (tensor, layer, index), so the weights never depend on load order or threads.
class BuiltinSource final : public WeightSource {
 public:
  explicit BuiltinSource(const ModelConfig& config) : config_(config) {}

  StatusOr<SourceTensor> get(WeightRole role, int layer) override {
    const int64_t h = config_.hidden_size, q = config_.q_size(), kv = config_.kv_size();
    const int64_t ffn = config_.intermediate_size, vocab = config_.vocab_size;
    std::vector<int64_t> shape;
    switch (role) {
      case WeightRole::kEmbedding: case WeightRole::kLmHead: shape = {vocab, h}; break;
      case WeightRole::kAttnNorm: case WeightRole::kFfnNorm: case WeightRole::kFinalNorm: shape = {h}; break;
      case WeightRole::kWq: shape = {q, h}; break;
      case WeightRole::kWk: case WeightRole::kWv: shape = {kv, h}; break;
      case WeightRole::kBq: shape = {q}; break;
      case WeightRole::kBk: case WeightRole::kBv: shape = {kv}; break;
      case WeightRole::kWo: shape = {h, q}; break;
      case WeightRole::kWGate: case WeightRole::kWUp: shape = {ffn, h}; break;
      case WeightRole::kWDown: shape = {h, ffn}; break;
    }
    const bool is_norm = shape.size() == 1 && (role == WeightRole::kAttnNorm ||
                                                role == WeightRole::kFfnNorm ||
                                                role == WeightRole::kFinalNorm);
    const int64_t count = shape.size() == 1 ? shape[0] : shape[0] * shape[1];
    buffer_.resize(static_cast<size_t>(count));
    // The embedding doubles as the LM head when tied: the same scale keeps logits near unit
    // variance, so sampling from a builtin model is not pinned to one token.
    const double scale = shape.size() == 2 ? std::sqrt(3.0 / static_cast<double>(shape[1])) : 0.1;
    const uint64_t seed = splitmix64(static_cast<uint64_t>(role) * 1000003ull + layer);
    float* out = buffer_.data();
#pragma omp parallel for schedule(static) if (count > (1 << 16))
    for (int64_t i = 0; i < count; ++i) {
      if (is_norm) {
        out[i] = 1.0f;
        continue;
      }
      const double u = static_cast<double>(splitmix64(seed ^ splitmix64(i)) >> 11) * 0x1.0p-53;
      out[i] = static_cast<float>((2.0 * u - 1.0) * scale);
    }
    return SourceTensor{.name = fmt::format("builtin role {} layer {}", static_cast<int>(role), layer),
                        .data = out, .dtype = DType::kF32, .shape = shape};
  }
  bool rotate_half_layout() const override { return false; }
  std::string description() const override { return config_.name; }

 private:
  const ModelConfig& config_;
  std::vector<float> buffer_;
};

}  // namespace

const std::vector<BuiltinModelPreset>& builtin_model_presets() {
  static const std::vector<BuiltinModelPreset> presets = {
      {"tiny", "the default: a small GQA model for demos and tests",
       make_config("tiny", 512, 128, 384, 4, 4, 2, 2048, true)},
      {"llama-110m", "stories110M / Llama-2 110M shape: dim 768, 12 layers, 12 heads",
       make_config("llama-110m", 32000, 768, 2048, 12, 12, 12, 2048, true)},
      {"llama-1b", "TinyLlama-1.1B shape: dim 2048, 22 layers, 32 heads, 4 KV heads",
       make_config("llama-1b", 32000, 2048, 5632, 22, 32, 4, 2048, false)},
  };
  return presets;
}

std::optional<ModelConfig> builtin_model_config(const std::string& name) {
  for (const auto& p : builtin_model_presets()) {
    if (p.name == name) return p.config;
  }
  return std::nullopt;
}

StatusOr<ModelConfig> find_builtin_model(const std::string& name) {
  if (auto config = builtin_model_config(name)) return *config;
  std::string names;
  for (const auto& p : builtin_model_presets()) names += (names.empty() ? "" : ", ") + ("builtin:" + p.name);
  return not_found("unknown builtin model `builtin:{}`; choose one of {}", name, names);
}

Status check_builtin_model_path(const std::string& model) {
  constexpr std::string_view kBuiltin = "builtin:";
  if (model.rfind(kBuiltin, 0) != 0) return ok_status();
  return find_builtin_model(model.substr(kBuiltin.size())).status();
}

StatusOr<std::unique_ptr<LoadedModel>> load_builtin_model(const std::string& name,
                                                          const ModelLoadOptions& options) {
  STRATA_ASSIGN_OR_RETURN(ModelConfig config, find_builtin_model(name));
  auto model = std::make_unique<LoadedModel>();
  model->config = std::move(config);
  BuiltinSource source(model->config);
  STRATA_ASSIGN_OR_RETURN(const ShardPlan shard, ShardPlan::make(model->config, options.topology));
  STRATA_ASSIGN_OR_RETURN(model->weights, build_model_weights(model->config, source, options.build_options(options.dtype.value_or(DType::kF32)), shard));
  model->format = "builtin";
  model->default_tokenizer = "builtin:bytes";
  model->stop_token_ids = model->config.eos_token_ids;
  return model;
}

}  // namespace strata
