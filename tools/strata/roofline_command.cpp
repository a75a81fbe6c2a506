// `strata roofline`: the best a model can do on a machine. For each (batch, context) point
// of a sweep it prints the bytes and FLOPs of one decode step, the memory- and
// compute-bound times, which bound wins, the largest batch whose KV cache fits, and the
// tokens/s ceiling. Models: presets or an HF config.json; hardware: configs/hardware/*.yaml.
#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/bench/roofline.h"
#include "tools/strata/commands.h"

namespace strata::cli {
// configs/hardware under the working directory, else beside the source tree of this binary
// (build/bin/strata -> ../../configs/hardware).
std::string resolve_hardware_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  if (fs::is_directory(dir) || fs::path(dir).is_absolute()) return dir;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path beside = exe.parent_path().parent_path().parent_path() / dir;
    if (fs::is_directory(beside)) return beside.string();
  }
  return dir;
}

namespace {

struct RooflineOptions {
  std::string model = "llama-2-7b";
  std::string hardware = "a100-80g";
  std::string hardware_dir = "configs/hardware";
  std::vector<int64_t> batch = {1, 8, 32, 128};
  std::vector<int64_t> context = {1024};
  std::string dtype = "fp16";
  std::string kv_dtype;
  double memory_fraction = 0.9;
  bool json = false;
};

std::string gb(double bytes) { return fmt::format("{:.2f} GB", bytes / 1e9); }

int run_roofline(const RooflineOptions& o) {
  auto model = bench::load_model_shape(o.model);
  if (!model.ok()) return report_failure("roofline", model.status());
  auto hw = bench::load_hardware(o.hardware, resolve_hardware_dir(o.hardware_dir));
  if (!hw.ok()) return report_failure("roofline", hw.status());
  auto dtype = bench::parse_roofline_dtype(o.dtype);
  if (!dtype.ok()) return report_failure("roofline", dtype.status().with_context("--dtype"));
  auto kv_dtype = bench::parse_roofline_dtype(o.kv_dtype.empty() ? o.dtype : o.kv_dtype);
  if (!kv_dtype.ok()) return report_failure("roofline", kv_dtype.status().with_context("--kv-dtype"));
  if (!(o.memory_fraction > 0 && o.memory_fraction <= 1)) {
    return report_failure("roofline", out_of_range("--memory-fraction must be in (0, 1], got {}", o.memory_fraction));
  }
  for (int64_t b : o.batch) {
    if (b < 1) return report_failure("roofline", out_of_range("--batch must be >= 1, got {}", b));
  }
  for (int64_t c : o.context) {
    if (c < 0) return report_failure("roofline", out_of_range("--context must be >= 0, got {}", c));
  }
  const bench::ModelCosts costs = bench::model_costs(*model, *dtype, *kv_dtype);
  std::vector<bench::RooflinePoint> points;
  for (int64_t c : o.context) {
    for (int64_t b : o.batch) points.push_back(bench::roofline_decode(costs, *hw, *dtype, b, c, o.memory_fraction));
  }

  if (o.json) {
    nlohmann::json j = {{"model", model->name},
                        {"hardware", hw->name},
                        {"hardware_measured", hw->measured},
                        {"memory_gb", hw->memory_gb},
                        {"memory_bandwidth_gb_per_s", hw->memory_bandwidth_gb_per_s},
                        {"peak_tflops", bench::peak_tflops(*hw, *dtype)},
                        {"dtype", o.dtype},
                        {"num_parameters", costs.num_parameters},
                        {"weight_bytes", costs.weight_bytes},
                        {"kv_bytes_per_token", costs.kv_bytes_per_token},
                        {"points", nlohmann::json::array()}};
    for (const auto& p : points) {
      j["points"].push_back({{"batch", p.batch},
                             {"context", p.context},
                             {"flops_per_token", p.flops_per_token},
                             {"step_bytes", p.step_bytes},
                             {"memory_time_ms", p.memory_time_s * 1e3},
                             {"compute_time_ms", p.compute_time_s * 1e3},
                             {"bound", p.compute_bound ? "compute" : "memory"},
                             {"step_time_ms", p.step_time_s * 1e3},
                             {"tokens_per_s", p.tokens_per_s},
                             {"max_batch", p.max_batch},
                             {"fits", p.fits}});
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("model     {}: {:.2f} B parameters, weights {} ({}), KV {:.1f} KB per token ({})\n",
                           model->name, static_cast<double>(costs.num_parameters) / 1e9, gb(costs.weight_bytes),
                           o.dtype, costs.kv_bytes_per_token / 1e3, o.kv_dtype.empty() ? o.dtype : o.kv_dtype);
  std::cout << fmt::format("hardware  {}{}: {:.0f} GB, {:.0f} GB/s, {:.1f} TFLOP/s {} (dense)\n", hw->name,
                           hw->measured ? " (measured now)" : "", hw->memory_gb, hw->memory_bandwidth_gb_per_s,
                           bench::peak_tflops(*hw, *dtype), o.dtype);
  std::cout << fmt::format("decode step: reads weights + batch x context x KV; {:.0f}% of memory usable\n\n",
                           o.memory_fraction * 100);
  std::cout << "| batch | context | GFLOP/token | bytes/step | memory-bound ms | compute-bound ms | bound | "
               "step ms | tokens/s | max batch |\n";
  std::cout << "|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|\n";
  for (const auto& p : points) {
    std::cout << fmt::format("| {} | {} | {:.2f} | {} | {:.3f} | {:.3f} | {} | {:.3f} | {:.0f} | {}{} |\n", p.batch,
                             p.context, p.flops_per_token / 1e9, gb(p.step_bytes), p.memory_time_s * 1e3,
                             p.compute_time_s * 1e3, p.compute_bound ? "compute" : "memory", p.step_time_s * 1e3,
                             p.tokens_per_s, p.max_batch, p.fits ? "" : " (batch does not fit)");
  }
  return 0;
}

}  // namespace

CommandRunner add_roofline_command(CLI::App& app) {
  auto o = std::make_shared<RooflineOptions>();
  CLI::App* cmd = app.add_subcommand("roofline", "Best-case decode step time and tokens/s of a model on a machine");
  cmd->add_option("--model", o->model,
                  "preset (llama-2-7b, llama-2-13b, llama-2-70b, llama-3-8b, llama-3-70b, mistral-7b, qwen2-7b, "
                  "tinyllama-1.1b, builtin:NAME) or an HF config.json / model directory")
      ->capture_default_str();
  cmd->add_option("--hardware", o->hardware,
                  "a100-80g, h100-sxm, h200, l40s, cpu-local (measured now), or a path to a .yaml")
      ->capture_default_str();
  cmd->add_option("--hardware-dir", o->hardware_dir, "where the hardware .yaml files are")->capture_default_str();
  cmd->add_option("--batch", o->batch, "batch sizes (sequences decoded per step) to sweep")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--context", o->context, "context lengths (tokens in each sequence's KV cache) to sweep")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "weight and compute dtype: fp32, bf16, fp16, fp8")->capture_default_str();
  cmd->add_option("--kv-dtype", o->kv_dtype, "KV cache dtype; empty: same as --dtype")->capture_default_str();
  cmd->add_option("--memory-fraction", o->memory_fraction, "share of memory usable for weights + KV cache")
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "print JSON instead of a table");
  return [o] { return run_roofline(*o); };
}

}  // namespace strata::cli
