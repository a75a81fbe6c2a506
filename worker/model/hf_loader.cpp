// HF model directories: config.json plus model.safetensors (or shards listed in
// model.safetensors.index.json), with Llama/Mistral/Qwen2 tensor names.
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/tokenizer/tokenizer_discovery.h"
#include "worker/model/model_loader.h"
#include "worker/model/safetensors.h"

namespace strata {
namespace {

class SafetensorsSource final : public WeightSource {
 public:
  SafetensorsSource(SafetensorsCheckpoint checkpoint) : checkpoint_(std::move(checkpoint)) {}

  StatusOr<SourceTensor> get(WeightRole role, int layer) override {
    const std::string name = tensor_name(role, layer);
    STRATA_ASSIGN_OR_RETURN(SafetensorView view, checkpoint_.get(name));
    return SourceTensor{.name = name, .data = view.data, .dtype = view.dtype, .shape = view.shape,
                        .nbytes = view.nbytes};
  }
  bool rotate_half_layout() const override { return true; }
  std::string description() const override { return checkpoint_.path(); }
  void release(const SourceTensor& t) override {
    if (auto view = checkpoint_.get(t.name); view.ok()) checkpoint_.release(*view);
  }

 private:
  static std::string tensor_name(WeightRole role, int l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    switch (role) {
      case WeightRole::kEmbedding: return "model.embed_tokens.weight";
      case WeightRole::kAttnNorm: return p + "input_layernorm.weight";
      case WeightRole::kWq: return p + "self_attn.q_proj.weight";
      case WeightRole::kWk: return p + "self_attn.k_proj.weight";
      case WeightRole::kWv: return p + "self_attn.v_proj.weight";
      case WeightRole::kBq: return p + "self_attn.q_proj.bias";
      case WeightRole::kBk: return p + "self_attn.k_proj.bias";
      case WeightRole::kBv: return p + "self_attn.v_proj.bias";
      case WeightRole::kWo: return p + "self_attn.o_proj.weight";
      case WeightRole::kFfnNorm: return p + "post_attention_layernorm.weight";
      case WeightRole::kWGate: return p + "mlp.gate_proj.weight";
      case WeightRole::kWUp: return p + "mlp.up_proj.weight";
      case WeightRole::kWDown: return p + "mlp.down_proj.weight";
      case WeightRole::kFinalNorm: return "model.norm.weight";
      case WeightRole::kLmHead: return "lm_head.weight";
    }
    return "";
  }

  SafetensorsCheckpoint checkpoint_;
};

StatusOr<nlohmann::json> read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found("{}: cannot open (does the model directory have a config.json?)", path);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    return invalid_argument("{}: not valid JSON: {}", path, e.what());
  }
}

}  // namespace

StatusOr<std::unique_ptr<LoadedModel>> load_hf_model(const std::string& dir,
                                                     const ModelLoadOptions& options) {
  namespace fs = std::filesystem;
  const std::string config_path = (fs::path(dir) / "config.json").string();
  STRATA_ASSIGN_OR_RETURN(nlohmann::json json, read_json_file(config_path));
  auto model = std::make_unique<LoadedModel>();
  STRATA_ASSIGN_OR_RETURN(model->config, parse_hf_config(json, config_path));
  ModelConfig& c = model->config;
  c.name = fs::path(dir).filename().string();
  if (c.name.empty()) c.name = fs::path(dir).parent_path().filename().string();
  if (json.contains("sliding_window") && json["sliding_window"].is_number_integer() &&
      json["sliding_window"].get<int64_t>() < c.max_position_embeddings) {
    // Mistral's window only matters past its length; cap the context there rather than
    // compute attention the model was not trained for.
    spdlog::warn("{}: sliding_window {} < max_position_embeddings {}; capping the context at "
                 "the window",
                 config_path, json["sliding_window"].get<int64_t>(), c.max_position_embeddings);
    c.max_position_embeddings = json["sliding_window"].get<int64_t>();
  }
  STRATA_ASSIGN_OR_RETURN(SafetensorsCheckpoint checkpoint, SafetensorsCheckpoint::open(dir));
  if (!c.tie_word_embeddings && !checkpoint.contains("lm_head.weight")) {
    return not_found("{}: `lm_head.weight` is missing and config.json does not set "
                     "tie_word_embeddings: true",
                     checkpoint.path());
  }
  SafetensorsSource source(std::move(checkpoint));
  DType dtype;
  if (options.dtype) {
    dtype = *options.dtype;
  } else {
    STRATA_ASSIGN_OR_RETURN(dtype, source_matrix_dtype(source));
  }
  STRATA_ASSIGN_OR_RETURN(const ShardPlan shard, ShardPlan::make(c, options.topology));
  STRATA_ASSIGN_OR_RETURN(model->weights, build_model_weights(c, source, options.build_options(dtype), shard));
  model->format = "hf";
  model->default_tokenizer = default_tokenizer_for_model(dir);
  model->stop_token_ids = c.eos_token_ids;
  return model;
}

}  // namespace strata
