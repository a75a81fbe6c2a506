// The roofline of LLM decoding: for a model shape, a machine and a (batch, context) point,
// how long one decode step must take at least, bounded by memory bandwidth (every weight
// and every cached K/V byte is read once per step) or by peak arithmetic.
//
// Conventions: bytes and FLOPs are exact counts; GB = 1e9 bytes, TB/s = 1e12 bytes/s.
// FLOPs per token = 2 × (parameters touched by a token: every linear layer and the LM head;
// not the embedding lookup) + 4 × layers × q_size × context (QKᵀ and PV). A step reads all
// weight bytes (the embedding table included, as the usual back-of-envelope does).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "worker/model/model_config.h"

namespace strata::bench {

struct HardwareSpec {
  std::string name;
  std::string description;
  double memory_gb = 0;                  // device (or host) memory
  double memory_bandwidth_gb_per_s = 0;  // sustained read bandwidth
  double peak_tflops_fp32 = 0;           // dense, no sparsity
  double peak_tflops_bf16 = 0;           // also used for fp16
  double peak_tflops_fp8 = 0;            // 0: not supported
  bool measured = false;                 // filled by the built-in probe (cpu-local)
};

// Reads configs/hardware/NAME.yaml (or a path to a .yaml). A spec with `probe: true`
// (cpu-local) is measured on this machine: read bandwidth, bf16/fp32 peak, memory size.
StatusOr<HardwareSpec> load_hardware(const std::string& name_or_path, const std::string& hardware_dir);
StatusOr<HardwareSpec> parse_hardware_yaml(const std::string& text, const std::string& source);
HardwareSpec probe_local_cpu();

// A preset name (llama-2-7b, ..., builtin:llama-110m) or a path to an HF config.json.
StatusOr<ModelConfig> load_model_shape(const std::string& name_or_path);
std::vector<std::string> model_preset_names();

enum class RooflineDtype { kFp32, kBf16, kFp16, kFp8 };
StatusOr<RooflineDtype> parse_roofline_dtype(const std::string& s);
double dtype_bytes(RooflineDtype d);
double peak_tflops(const HardwareSpec& hw, RooflineDtype d);

struct ModelCosts {
  int64_t num_parameters = 0;
  double weight_bytes = 0;
  double kv_bytes_per_token = 0;        // K and V, every layer
  double linear_flops_per_token = 0;    // 2 × matmul parameters (incl. LM head)
  double attention_flops_per_token_per_context = 0;  // × context for one token
};
ModelCosts model_costs(const ModelConfig& m, RooflineDtype weight_dtype, RooflineDtype kv_dtype);

struct RooflinePoint {
  int64_t batch = 1;
  int64_t context = 0;             // tokens already in each sequence's KV cache
  double flops_per_token = 0;
  double step_bytes = 0;           // weights + batch × context × KV bytes per token
  double step_flops = 0;
  double memory_time_s = 0;
  double compute_time_s = 0;
  bool compute_bound = false;
  double step_time_s = 0;          // max of the two
  double tokens_per_s = 0;         // batch / step time
  int64_t max_batch = 0;           // sequences of this context whose KV fits beside the weights
  bool fits = true;                // batch <= max_batch
};

// `memory_fraction` of the memory is usable for weights + KV.
RooflinePoint roofline_decode(const ModelCosts& c, const HardwareSpec& hw, RooflineDtype compute_dtype,
                              int64_t batch, int64_t context, double memory_fraction);

}  // namespace strata::bench
