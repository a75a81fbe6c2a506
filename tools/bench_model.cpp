// Single-sequence decode and prefill benchmark of a model on the CPU, each next to its
// ceiling measured in the same run: decode against the memory-bandwidth floor (weight and
// KV bytes read per token ÷ measured read bandwidth), prefill against the measured peak
// arithmetic rate. Prints one Markdown table row per (model, dtype).
//
//   bench_model --model builtin:llama-110m --dtype bf16 --threads 2
#include <algorithm>
#include <chrono>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "kernels/cpu/bandwidth_probe.h"
#include "kernels/cpu/compute_probe.h"
#include "kernels/ops.h"
#include "tools/bench/bench_model_flags.h"
#include "worker/engine/engine_config.h"
#include "worker/kv/block_pool.h"
#include "worker/kv/kv_cache.h"
#include "worker/model/llama_model.h"
#include "worker/model/model_loader.h"

namespace {

using namespace strata;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Bytes one decode step reads: every matrix once (the embedding only one row, unless it is
// also the LM head), the norms, and the KV cache of `context` positions.
double decode_bytes_per_token(const LoadedModel& m, int64_t context, DType kv_dtype) {
  const ModelWeights& w = m.weights;
  double bytes = static_cast<double>(w.lm_head.nbytes() + w.final_norm.nbytes());
  for (const LayerWeights& l : w.layers) {
    bytes += l.wqkv.nbytes() + l.wo.nbytes() + l.w_gate_up.nbytes() + l.w_down.nbytes() +
             l.attn_norm.nbytes() + l.ffn_norm.nbytes();
  }
  bytes += static_cast<double>(KvCache::bytes_per_block(m.config, 1, kv_dtype)) * context;
  return bytes;
}

// FLOPs of a prefill of n tokens: matrices (LM head for the last token only) + attention.
double prefill_flops(const ModelConfig& c, int64_t n) {
  const double per_token = 2.0 * c.num_layers *
                           (c.hidden_size * (c.q_size() + 2 * c.kv_size()) + c.q_size() * c.hidden_size +
                            3.0 * c.hidden_size * c.intermediate_size);
  const double attention = 2.0 * 2.0 * c.num_layers * c.q_size() * (n * (n + 1) / 2.0);
  return per_token * n + attention + 2.0 * c.vocab_size * c.hidden_size;
}

struct Lengths {
  int prompt = 0, decode = 0, prefill = 0, repeats = 1;
  DType kv_dtype = DType::kF32;
};

// Seconds of the best of `repeats` prefills of l.prefill tokens, and of l.decode
// single-token steps after l.prompt tokens of context.
std::pair<double, double> time_forward(const LoadedModel& m, const Lengths& l) {
  const ModelConfig& c = m.config;
  const int prompt_tokens = l.prompt, decode_tokens = l.decode, prefill_tokens = l.prefill;
  const int block_size = 16;
  const int64_t max_tokens = std::max<int64_t>(prompt_tokens + decode_tokens, prefill_tokens);
  const int64_t num_blocks = (max_tokens + block_size - 1) / block_size;
  std::vector<int32_t> table(num_blocks);
  for (int64_t i = 0; i < num_blocks; ++i) table[i] = static_cast<int32_t>(i);
  KvCache cache(c, block_size, num_blocks, l.kv_dtype);
  LlamaModel forward(c, m.weights);
  std::vector<float> logits;
  auto token = [&](int64_t i) { return static_cast<int32_t>((i * 7919 + 13) % c.vocab_size); };

  // Prefill: one forward over prefill_tokens tokens, best of `repeats`.
  double prefill_s = 1e30;
  for (int r = 0; r < l.repeats; ++r) {
    ForwardBatch batch;
    for (int64_t i = 0; i < prefill_tokens; ++i) batch.token_ids.push_back(token(i));
    batch.sequences.push_back({0, prefill_tokens, table, true});
    const auto t0 = Clock::now();
    forward.forward(batch, cache, logits);
    prefill_s = std::min(prefill_s, seconds_since(t0));
  }

  // Decode: prompt_tokens of context, then decode_tokens single-token steps.
  {
    ForwardBatch batch;
    for (int64_t i = 0; i < prompt_tokens; ++i) batch.token_ids.push_back(token(i));
    batch.sequences.push_back({0, prompt_tokens, table, true});
    forward.forward(batch, cache, logits);
  }
  const auto t0 = Clock::now();
  for (int i = 0; i < decode_tokens; ++i) {
    ForwardBatch batch{{token(prompt_tokens + i)}, {{prompt_tokens + i, 1, table, true}}};
    forward.forward(batch, cache, logits);
  }
  return {prefill_s, seconds_since(t0)};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"strata single-sequence decode/prefill benchmark"};
  bench::BenchModelFlags model_flags;
  int prompt_tokens = 128, decode_tokens = 64, prefill_tokens = 512, repeats = 3;
  bool header = false;
  model_flags.add_to(app, /*offer_device=*/false);
  app.add_option("--prompt-tokens", prompt_tokens, "context before the timed decode")->capture_default_str();
  app.add_option("--decode-tokens", decode_tokens, "decode steps timed")->capture_default_str();
  app.add_option("--prefill-tokens", prefill_tokens, "tokens in the timed prefill")->capture_default_str();
  app.add_option("--repeats", repeats, "best of this many prefill runs")->capture_default_str();
  std::string kv_cache_dtype = "auto";
  app.add_option("--kv-cache-dtype", kv_cache_dtype, "auto (the weights'), bf16, fp16, fp32 or int8")
      ->capture_default_str();
  app.add_flag("--header", header, "print the Markdown table header first");
  CLI11_PARSE(app, argc, argv);

  auto loaded = model_flags.load();
  if (!loaded.ok()) {
    std::cerr << loaded.status().message() << "\n";
    return 2;
  }
  const int nthreads = kernels::cpu_threads();
  const LoadedModel& m = **loaded;
  const ModelConfig& c = m.config;
  const DType dtype = m.weights.dtype;
  const std::string weights_label =
      m.weights.quantization == Quantization::kNone
          ? std::string(dtype_name(dtype))
          : fmt::format("{} ({})", quantization_name(m.weights.quantization), dtype_name(dtype));
  std::cerr << c.summary() << ", " << dtype_name(dtype) << ", " << kernels::cpu_isa_name() << " × "
            << nthreads << " threads\n";

  const double bandwidth = kernels::cpu::measure_read_bandwidth_gb_per_s(size_t{1} << 30, nthreads);
  const double peak = dtype == DType::kBF16 ? kernels::cpu::measure_bf16_peak_gflops(nthreads)
                                             : kernels::cpu::measure_fp32_peak_gflops(nthreads);

  const std::optional<DType> kv_dtype = resolve_kv_cache_dtype(kv_cache_dtype, dtype);
  if (!kv_dtype) {
    std::cerr << "--kv-cache-dtype must be auto, bf16, fp16, fp32 or int8. Given: " << kv_cache_dtype << "\n";
    return 2;
  }
  const Lengths lengths{.prompt = prompt_tokens, .decode = decode_tokens,
                        .prefill = prefill_tokens, .repeats = repeats, .kv_dtype = *kv_dtype};
  const auto [prefill_s, decode_s] = time_forward(m, lengths);
  const double decode_tps = decode_tokens / decode_s;
  const double bytes = decode_bytes_per_token(m, prompt_tokens + decode_tokens / 2, *kv_dtype);
  const double floor_tps = bandwidth * 1e9 / bytes;
  const double prefill_gflops = prefill_flops(c, prefill_tokens) / prefill_s / 1e9;

  if (header) {
    std::cout << "| model | weights | threads | read GB/s | MB read/token | decode tok/s | "
                 "bandwidth floor tok/s | % of floor | prefill tok/s | prefill GFLOP/s | "
                 "peak GFLOP/s | % of peak |\n"
                 "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  }
  std::cout << fmt::format("| {} | {} | {} | {:.1f} | {:.1f} | {:.1f} | {:.1f} | {:.0f}% | {:.0f} | {:.0f} | {:.0f} | {:.0f}% |\n",
                           c.name, fmt::format("{}, KV {}", weights_label, dtype_name(*kv_dtype)),
                           nthreads, bandwidth, bytes / 1e6,
                           decode_tps, floor_tps, 100.0 * decode_tps / floor_tps,
                           prefill_tokens / prefill_s, prefill_gflops, peak,
                           100.0 * prefill_gflops / peak);
  return 0;
}
