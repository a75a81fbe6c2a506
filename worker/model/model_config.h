// ModelConfig: the shape of a Llama-family decoder (Llama 2/3, Mistral, Qwen2, TinyLlama),
// read from an HF config.json, a llama2.c header, or a builtin: preset. Everything that
// sizes weights, the KV cache or RoPE reads it from here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"

namespace strata {

// HF `rope_scaling`. "llama3" rescales low frequencies for long context (Llama 3.1+);
// "linear" divides every position by `factor`.
struct RopeScaling {
  std::string type;  // "" (none), "linear" or "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
  // GGUF's rope_freqs.weight (how llama.cpp stores Llama 3.1's scaling): pair i's inverse
  // frequency is divided by factors[i]. Empty: none.
  std::vector<double> freq_factors;
};

struct ModelConfig {
  std::string name;                 // shown in logs and /v1/models
  std::string architecture = "llama";
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int64_t max_position_embeddings = 0;  // positions the KV cache of one sequence may hold
  float rms_norm_eps = 1e-5f;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;  // lm_head shares the embedding table
  bool attention_bias = false;       // q/k/v projections carry a bias (Qwen2)
  std::optional<int32_t> bos_token_id;
  std::vector<int32_t> eos_token_ids;

  int64_t q_size() const { return int64_t{num_heads} * head_dim; }
  int64_t kv_size() const { return int64_t{num_kv_heads} * head_dim; }
  int64_t num_parameters() const;
  // Inverse frequencies of the RoPE pairs, [head_dim / 2], with rope_scaling applied.
  std::vector<double> rope_inv_freq() const;
  // Checks that the shapes are consistent; `source` names the file in messages.
  Status validate(const std::string& source) const;
  std::string summary() const;
};

// A Llama shape from its main dimensions (head_dim = hidden / heads, defaults elsewhere).
ModelConfig make_llama_config(std::string name, int64_t vocab, int64_t hidden, int64_t ffn,
                              int layers, int heads, int kv_heads, int64_t context, bool tied);

// Parses an HF config.json (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM and
// configs of the same shape). `file` names the file in error messages.
StatusOr<ModelConfig> parse_hf_config(const nlohmann::json& json, const std::string& file);

}  // namespace strata
