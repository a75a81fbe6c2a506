#include "tools/bench/roofline.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "kernels/cpu/bandwidth_probe.h"
#include "kernels/cpu/compute_probe.h"
#include "worker/model/builtin_models.h"

namespace strata::bench {
namespace {

ModelConfig shape(std::string name, int64_t vocab, int64_t hidden, int64_t ffn, int layers, int heads,
                  int kv_heads, int64_t max_pos, bool tied = false) {
  return make_llama_config(std::move(name), vocab, hidden, ffn, layers, heads, kv_heads, max_pos, tied);
}

// Shapes from each model's published config.json.
const std::vector<ModelConfig>& presets() {
  static const std::vector<ModelConfig> kPresets = {
      shape("llama-2-7b", 32000, 4096, 11008, 32, 32, 32, 4096),
      shape("llama-2-13b", 32000, 5120, 13824, 40, 40, 40, 4096),
      shape("llama-2-70b", 32000, 8192, 28672, 80, 64, 8, 4096),
      shape("llama-3-8b", 128256, 4096, 14336, 32, 32, 8, 8192),
      shape("llama-3-70b", 128256, 8192, 28672, 80, 64, 8, 8192),
      shape("mistral-7b", 32000, 4096, 14336, 32, 32, 8, 32768),
      shape("qwen2-7b", 152064, 3584, 18944, 28, 28, 4, 32768),
      shape("tinyllama-1.1b", 32000, 2048, 5632, 22, 32, 4, 2048),
  };
  return kPresets;
}

}  // namespace

std::vector<std::string> model_preset_names() {
  std::vector<std::string> names;
  for (const ModelConfig& m : presets()) names.push_back(m.name);
  for (const auto& p : builtin_model_presets()) names.push_back("builtin:" + p.name);
  return names;
}

StatusOr<ModelConfig> load_model_shape(const std::string& name_or_path) {
  for (const ModelConfig& m : presets()) {
    if (m.name == name_or_path) return m;
  }
  if (name_or_path.starts_with("builtin:")) {
    if (auto c = builtin_model_config(name_or_path.substr(8))) return *c;
  }
  std::filesystem::path path(name_or_path);
  if (std::filesystem::is_directory(path)) path /= "config.json";
  if (!std::filesystem::exists(path)) {
    std::string names;
    for (const std::string& n : model_preset_names()) names += (names.empty() ? "" : ", ") + n;
    return not_found("--model `{}` is neither a preset ({}) nor an existing config.json", name_or_path, names);
  }
  std::ifstream in(path);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid_argument("{}: not valid JSON", path.string());
  STRATA_ASSIGN_OR_RETURN(ModelConfig c, parse_hf_config(j, path.string()));
  return c;
}

StatusOr<RooflineDtype> parse_roofline_dtype(const std::string& s) {
  if (s == "fp32" || s == "f32") return RooflineDtype::kFp32;
  if (s == "bf16") return RooflineDtype::kBf16;
  if (s == "fp16" || s == "f16") return RooflineDtype::kFp16;
  if (s == "fp8") return RooflineDtype::kFp8;
  return invalid_argument("dtype `{}`: choose fp32, bf16, fp16 or fp8", s);
}

double dtype_bytes(RooflineDtype d) {
  switch (d) {
    case RooflineDtype::kFp32: return 4;
    case RooflineDtype::kBf16:
    case RooflineDtype::kFp16: return 2;
    case RooflineDtype::kFp8: return 1;
  }
  return 2;
}

double peak_tflops(const HardwareSpec& hw, RooflineDtype d) {
  switch (d) {
    case RooflineDtype::kFp32: return hw.peak_tflops_fp32;
    case RooflineDtype::kBf16:
    case RooflineDtype::kFp16: return hw.peak_tflops_bf16 > 0 ? hw.peak_tflops_bf16 : hw.peak_tflops_fp32;
    case RooflineDtype::kFp8:
      return hw.peak_tflops_fp8 > 0 ? hw.peak_tflops_fp8 : peak_tflops(hw, RooflineDtype::kBf16);
  }
  return 0;
}

StatusOr<HardwareSpec> parse_hardware_yaml(const std::string& text, const std::string& source) {
  YAML::Node y;
  try {
    y = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return invalid_argument("{}: not valid YAML: {}", source, e.what());
  }
  if (y["probe"] && y["probe"].as<bool>(false)) {
    HardwareSpec hw = probe_local_cpu();
    if (y["name"]) hw.name = y["name"].as<std::string>();
    return hw;
  }
  HardwareSpec hw;
  try {
    hw.name = y["name"].as<std::string>(std::filesystem::path(source).stem().string());
    hw.description = y["description"].as<std::string>("");
    hw.memory_gb = y["memory_gb"].as<double>(0);
    hw.memory_bandwidth_gb_per_s = y["memory_bandwidth_gb_per_s"].as<double>(0);
    if (const YAML::Node p = y["peak_tflops"]) {
      hw.peak_tflops_fp32 = p["fp32"].as<double>(0);
      hw.peak_tflops_bf16 = p["bf16"].as<double>(0);
      hw.peak_tflops_fp8 = p["fp8"].as<double>(0);
    }
  } catch (const YAML::Exception& e) {
    return invalid_argument("{}: a field has the wrong type: {}", source, e.what());
  }
  if (hw.memory_gb <= 0) return invalid_argument("{}: `memory_gb` must be > 0, got {}", source, hw.memory_gb);
  if (hw.memory_bandwidth_gb_per_s <= 0) {
    return invalid_argument("{}: `memory_bandwidth_gb_per_s` must be > 0, got {}", source,
                            hw.memory_bandwidth_gb_per_s);
  }
  if (hw.peak_tflops_fp32 <= 0 && hw.peak_tflops_bf16 <= 0) {
    return invalid_argument("{}: `peak_tflops` needs fp32 or bf16 > 0", source);
  }
  return hw;
}

StatusOr<HardwareSpec> load_hardware(const std::string& name_or_path, const std::string& hardware_dir) {
  std::filesystem::path path(name_or_path);
  if (path.extension() != ".yaml") path = std::filesystem::path(hardware_dir) / (name_or_path + ".yaml");
  std::ifstream in(path);
  if (!in) {
    std::string names;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(hardware_dir, ec)) {
      if (e.path().extension() == ".yaml") names += (names.empty() ? "" : ", ") + e.path().stem().string();
    }
    return not_found("--hardware `{}`: no file {}; choose one of [{}] or give a .yaml path", name_or_path,
                     path.string(), names);
  }
  std::stringstream text;
  text << in.rdbuf();
  return parse_hardware_yaml(text.str(), path.string());
}

HardwareSpec probe_local_cpu() {
  const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  HardwareSpec hw{.name = "cpu-local", .description = "this machine, measured by the built-in probe"};
  hw.memory_gb = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE)) / 1e9;
  hw.memory_bandwidth_gb_per_s = kernels::cpu::measure_read_bandwidth_gb_per_s(size_t{512} << 20, threads);
  hw.peak_tflops_fp32 = kernels::cpu::measure_fp32_peak_gflops(threads) / 1e3;
  hw.peak_tflops_bf16 = kernels::cpu::measure_bf16_peak_gflops(threads) / 1e3;
  hw.measured = true;
  return hw;
}

ModelCosts model_costs(const ModelConfig& m, RooflineDtype weight_dtype, RooflineDtype kv_dtype) {
  const int64_t h = m.hidden_size, q = m.q_size(), kv = m.kv_size(), f = m.intermediate_size;
  const int64_t per_layer_matmul = h * q + 2 * h * kv + q * h + 3 * h * f;
  const int64_t lm_head = m.vocab_size * h;  // multiplied every step, tied or not
  ModelCosts c;
  c.num_parameters = m.num_parameters();
  c.weight_bytes = static_cast<double>(c.num_parameters) * dtype_bytes(weight_dtype);
  c.kv_bytes_per_token = 2.0 * m.num_layers * static_cast<double>(kv) * dtype_bytes(kv_dtype);
  c.linear_flops_per_token = 2.0 * static_cast<double>(int64_t{m.num_layers} * per_layer_matmul + lm_head);
  c.attention_flops_per_token_per_context = 4.0 * m.num_layers * static_cast<double>(q);
  return c;
}

RooflinePoint roofline_decode(const ModelCosts& c, const HardwareSpec& hw, RooflineDtype compute_dtype,
                              int64_t batch, int64_t context, double memory_fraction) {
  RooflinePoint p{.batch = batch, .context = context};
  const double ctx = static_cast<double>(context), b = static_cast<double>(batch);
  p.flops_per_token = c.linear_flops_per_token + c.attention_flops_per_token_per_context * ctx;
  p.step_bytes = c.weight_bytes + b * ctx * c.kv_bytes_per_token;
  p.step_flops = b * p.flops_per_token;
  p.memory_time_s = p.step_bytes / (hw.memory_bandwidth_gb_per_s * 1e9);
  const double peak = peak_tflops(hw, compute_dtype) * 1e12;
  p.compute_time_s = peak > 0 ? p.step_flops / peak : INFINITY;
  p.compute_bound = p.compute_time_s > p.memory_time_s;
  p.step_time_s = std::max(p.memory_time_s, p.compute_time_s);
  p.tokens_per_s = b / p.step_time_s;
  const double free_bytes = hw.memory_gb * 1e9 * memory_fraction - c.weight_bytes;
  const double per_seq = std::max(ctx, 1.0) * c.kv_bytes_per_token;
  p.max_batch = free_bytes > 0 ? static_cast<int64_t>(std::floor(free_bytes / per_seq)) : 0;
  p.fits = batch <= p.max_batch;
  return p;
}

}  // namespace strata::bench
