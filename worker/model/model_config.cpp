#include "worker/model/model_config.h"

#include <cmath>
#include <numbers>

#include <nlohmann/json.hpp>

namespace strata {

int64_t ModelConfig::num_parameters() const {
  const int64_t per_layer = 2 * hidden_size                                  // norms
                            + hidden_size * (q_size() + 2 * kv_size())       // q, k, v
                            + (attention_bias ? q_size() + 2 * kv_size() : 0)
                            + q_size() * hidden_size                         // o
                            + 3 * hidden_size * intermediate_size;           // gate, up, down
  return vocab_size * hidden_size * (tie_word_embeddings ? 1 : 2) + num_layers * per_layer +
         hidden_size;
}

std::vector<double> ModelConfig::rope_inv_freq() const {
  std::vector<double> inv_freq(static_cast<size_t>(head_dim / 2));
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    inv_freq[i] = std::pow(rope_theta, -2.0 * static_cast<double>(i) / head_dim);
  }
  if (rope_scaling.type == "linear") {
    for (double& f : inv_freq) f /= rope_scaling.factor;
  } else if (rope_scaling.type == "llama3") {
    // Wavelengths longer than the original context are slowed by `factor`, short ones kept,
    // and the band between blends the two (Llama 3.1's published rule).
    const double old_len = static_cast<double>(rope_scaling.original_max_position_embeddings);
    const double low_freq_wavelen = old_len / rope_scaling.low_freq_factor;
    const double high_freq_wavelen = old_len / rope_scaling.high_freq_factor;
    for (double& f : inv_freq) {
      const double wavelen = 2.0 * std::numbers::pi / f;
      if (wavelen < high_freq_wavelen) continue;
      if (wavelen > low_freq_wavelen) {
        f /= rope_scaling.factor;
        continue;
      }
      const double smooth = (old_len / wavelen - rope_scaling.low_freq_factor) /
                            (rope_scaling.high_freq_factor - rope_scaling.low_freq_factor);
      f = (1.0 - smooth) * f / rope_scaling.factor + smooth * f;
    }
  }
  for (size_t i = 0; i < rope_scaling.freq_factors.size() && i < inv_freq.size(); ++i) {
    inv_freq[i] /= rope_scaling.freq_factors[i];
  }
  return inv_freq;
}

Status ModelConfig::validate(const std::string& source) const {
  auto positive = [&](const char* field, int64_t value) -> Status {
    if (value <= 0) return invalid_argument("{}: `{}` must be > 0. Given: {}", source, field, value);
    return ok_status();
  };
  STRATA_RETURN_IF_ERROR(positive("vocab_size", vocab_size));
  STRATA_RETURN_IF_ERROR(positive("hidden_size", hidden_size));
  STRATA_RETURN_IF_ERROR(positive("intermediate_size", intermediate_size));
  STRATA_RETURN_IF_ERROR(positive("num_hidden_layers", num_layers));
  STRATA_RETURN_IF_ERROR(positive("num_attention_heads", num_heads));
  STRATA_RETURN_IF_ERROR(positive("num_key_value_heads", num_kv_heads));
  STRATA_RETURN_IF_ERROR(positive("head_dim", head_dim));
  STRATA_RETURN_IF_ERROR(positive("max_position_embeddings", max_position_embeddings));
  if (num_heads % num_kv_heads != 0) {
    return invalid_argument(
        "{}: `num_attention_heads` ({}) must be a multiple of `num_key_value_heads` ({})", source,
        num_heads, num_kv_heads);
  }
  if (head_dim % 2 != 0) {
    return invalid_argument("{}: `head_dim` must be even for rotary embeddings. Given: {}", source,
                            head_dim);
  }
  if (!(rms_norm_eps > 0.0f) || !std::isfinite(rms_norm_eps)) {
    return invalid_argument("{}: `rms_norm_eps` must be > 0. Given: {}", source, rms_norm_eps);
  }
  if (!(rope_theta > 0.0)) {
    return invalid_argument("{}: `rope_theta` must be > 0. Given: {}", source, rope_theta);
  }
  if (!rope_scaling.type.empty() && !(rope_scaling.factor > 0.0)) {
    return invalid_argument("{}: `rope_scaling.factor` must be > 0. Given: {}", source,
                            rope_scaling.factor);
  }
  return ok_status();
}

std::string ModelConfig::summary() const {
  return fmt::format(
      "{}: {:.1f}M parameters, hidden {}, {} layers, {} heads ({} KV), head_dim {}, ffn {}, "
      "vocab {}, context {}{}",
      name, static_cast<double>(num_parameters()) / 1e6, hidden_size, num_layers, num_heads,
      num_kv_heads, head_dim, intermediate_size, vocab_size, max_position_embeddings,
      tie_word_embeddings ? ", tied embeddings" : "");
}

ModelConfig make_llama_config(std::string name, int64_t vocab, int64_t hidden, int64_t ffn,
                              int layers, int heads, int kv_heads, int64_t context, bool tied) {
  ModelConfig c;
  c.name = std::move(name);
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.intermediate_size = ffn;
  c.num_layers = layers;
  c.num_heads = heads;
  c.num_kv_heads = kv_heads;
  c.head_dim = static_cast<int>(hidden / heads);
  c.max_position_embeddings = context;
  c.tie_word_embeddings = tied;
  return c;
}

namespace {

// Reads an optional field with a type check that names the file and the field.
template <typename T>
Status read_field(const nlohmann::json& json, const std::string& file, const char* key, T& out,
                  bool required) {
  auto it = json.find(key);
  if (it == json.end() || it->is_null()) {
    if (required) return invalid_argument("{}: required field `{}` is missing", file, key);
    return ok_status();
  }
  if constexpr (std::is_same_v<T, bool>) {
    if (!it->is_boolean()) return invalid_argument("{}: `{}` must be a boolean. Given: {}", file, key, it->dump());
  } else if constexpr (std::is_integral_v<T>) {
    if (!it->is_number_integer()) return invalid_argument("{}: `{}` must be an integer. Given: {}", file, key, it->dump());
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!it->is_number()) return invalid_argument("{}: `{}` must be a number. Given: {}", file, key, it->dump());
  } else {
    if (!it->is_string()) return invalid_argument("{}: `{}` must be a string. Given: {}", file, key, it->dump());
  }
  out = it->get<T>();
  return ok_status();
}

// `rope_scaling`: absent, null or "default" leave it off; llama3 and linear are read.
Status read_rope_scaling(const nlohmann::json& json, const std::string& file, RopeScaling& out) {
  auto it = json.find("rope_scaling");
  if (it == json.end() || it->is_null()) return ok_status();
  if (!it->is_object()) return invalid_argument("{}: `rope_scaling` must be an object", file);
  const std::string where = file + " rope_scaling";
  std::string type;
  STRATA_RETURN_IF_ERROR(read_field(*it, where, it->contains("rope_type") ? "rope_type" : "type", type, true));
  if (type != "llama3" && type != "linear" && type != "default") {
    return unimplemented("{}: `rope_scaling.rope_type` \"{}\" is not supported (llama3, linear)",
                         file, type);
  }
  if (type != "default") out.type = type;
  STRATA_RETURN_IF_ERROR(read_field(*it, where, "factor", out.factor, true));
  STRATA_RETURN_IF_ERROR(read_field(*it, where, "low_freq_factor", out.low_freq_factor, false));
  STRATA_RETURN_IF_ERROR(read_field(*it, where, "high_freq_factor", out.high_freq_factor, false));
  return read_field(*it, where, "original_max_position_embeddings",
                    out.original_max_position_embeddings, false);
}

// BOS and EOS ids; `eos_token_id` may be one id or a list.
Status read_special_ids(const nlohmann::json& json, const std::string& file, ModelConfig& c) {
  if (auto it = json.find("bos_token_id"); it != json.end() && it->is_number_integer()) {
    c.bos_token_id = it->get<int32_t>();
  }
  auto it = json.find("eos_token_id");
  if (it == json.end()) return ok_status();
  if (it->is_number_integer()) {
    c.eos_token_ids.push_back(it->get<int32_t>());
  } else if (it->is_array()) {
    for (const auto& id : *it) {
      if (!id.is_number_integer()) return invalid_argument("{}: `eos_token_id` entries must be integers", file);
      c.eos_token_ids.push_back(id.get<int32_t>());
    }
  }
  return ok_status();
}

}  // namespace

StatusOr<ModelConfig> parse_hf_config(const nlohmann::json& json, const std::string& file) {
  if (!json.is_object()) return invalid_argument("{}: expected a JSON object", file);
  ModelConfig c;
  std::string model_type = "llama";
  STRATA_RETURN_IF_ERROR(read_field(json, file, "model_type", model_type, false));
  static const char* kSupported[] = {"llama", "mistral", "qwen2"};
  if (std::find(std::begin(kSupported), std::end(kSupported), model_type) == std::end(kSupported)) {
    return unimplemented("{}: `model_type` \"{}\" is not supported; strata runs llama, mistral "
                         "and qwen2 decoders",
                         file, model_type);
  }
  c.architecture = model_type;
  c.attention_bias = model_type == "qwen2";
  STRATA_RETURN_IF_ERROR(read_field(json, file, "vocab_size", c.vocab_size, true));
  STRATA_RETURN_IF_ERROR(read_field(json, file, "hidden_size", c.hidden_size, true));
  STRATA_RETURN_IF_ERROR(read_field(json, file, "intermediate_size", c.intermediate_size, true));
  STRATA_RETURN_IF_ERROR(read_field(json, file, "num_hidden_layers", c.num_layers, true));
  STRATA_RETURN_IF_ERROR(read_field(json, file, "num_attention_heads", c.num_heads, true));
  c.num_kv_heads = c.num_heads;
  STRATA_RETURN_IF_ERROR(read_field(json, file, "num_key_value_heads", c.num_kv_heads, false));
  c.max_position_embeddings = 2048;
  STRATA_RETURN_IF_ERROR(
      read_field(json, file, "max_position_embeddings", c.max_position_embeddings, false));
  STRATA_RETURN_IF_ERROR(read_field(json, file, "rms_norm_eps", c.rms_norm_eps, false));
  STRATA_RETURN_IF_ERROR(read_field(json, file, "rope_theta", c.rope_theta, false));
  STRATA_RETURN_IF_ERROR(read_field(json, file, "tie_word_embeddings", c.tie_word_embeddings, false));
  STRATA_RETURN_IF_ERROR(read_field(json, file, "attention_bias", c.attention_bias, false));
  if (c.num_heads <= 0) {
    return invalid_argument("{}: `num_attention_heads` must be > 0. Given: {}", file, c.num_heads);
  }
  c.head_dim = static_cast<int>(c.hidden_size / c.num_heads);
  STRATA_RETURN_IF_ERROR(read_field(json, file, "head_dim", c.head_dim, false));

  STRATA_RETURN_IF_ERROR(read_rope_scaling(json, file, c.rope_scaling));
  STRATA_RETURN_IF_ERROR(read_special_ids(json, file, c));
  STRATA_RETURN_IF_ERROR(c.validate(file));
  return c;
}

}  // namespace strata
