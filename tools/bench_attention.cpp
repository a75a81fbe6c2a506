// Decode attention benchmark: the dedicated decode kernel against the generic (prefill)
// paged-attention path at query length 1, for 32 sequences of 512 / 2048 / 8192 cached
// tokens on llama-110m and TinyLlama-1.1B shapes, block size 16, shuffled block tables.
// Reports time per call, KV bytes read, GB/s and the fraction of the read bandwidth
// measured in the same run (the floor for a kernel that must read every cached K and V).
// Prints a Markdown table.
//
// Every call reads the whole cache once; the smallest case (96 MiB) already exceeds the
// last-level cache, so calls stream K and V from DRAM as in serving.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/bandwidth_probe.h"
#include "kernels/ops.h"

namespace {

namespace k = strata::kernels;

struct Shape {
  const char* model;
  int num_q_heads, num_kv_heads, head_dim;
};

// Fastest of individually timed calls after one warm-up call. The fastest, not the median:
// this machine is shared with builds, and a call that lost its core for a scheduler tick
// says nothing about the kernel. Each call still streams its whole KV from DRAM.
template <class Fn>
double best_call_s(int calls, Fn fn) {
  fn();
  double best = 1e30;
  for (int i = 0; i < calls; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

// Cache contents do not matter for timing; distinct pages touched do. Filled in parallel
// so first touch spreads pages like the engine's cache.
std::vector<float> filled(size_t n, float value) {
  std::vector<float> v(n);
#pragma omp parallel for
  for (int64_t i = 0; i < static_cast<int64_t>(n); ++i)
    v[static_cast<size_t>(i)] = value * static_cast<float>(i % 97) / 97.0f;
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"strata decode attention benchmark"};
  int threads = 2;
  int num_seqs = 32;
  int block_size = 16;
  double budget_s = 1.5;
  std::string only;
  app.add_option("--threads", threads, "CPU threads")->capture_default_str();
  app.add_option("--seqs", num_seqs, "sequences per call")->capture_default_str();
  app.add_option("--block-size", block_size, "KV block size")->capture_default_str();
  app.add_option("--budget-s", budget_s, "seconds of timed calls per cell")->capture_default_str();
  app.add_option("--only", only, "run only models whose name contains this");
  CLI11_PARSE(app, argc, argv);

  k::set_cpu_threads(threads);
  const auto& be = k::cpu_backend();
  const double bw = k::cpu::measure_read_bandwidth_gb_per_s(size_t{1} << 30, threads);
  std::printf("CPU path: %s, threads: %d, sequences: %d, block size: %d\n\n",
              std::string(k::cpu_isa_name()).c_str(), threads, num_seqs, block_size);
  std::printf("Measured read bandwidth (1 GiB buffer, best of 12): **%.1f GB/s**\n\n", bw);
  std::printf(
      "| model | context | KV MiB | prefill path us | decode us | decode GB/s | "
      "%% of bandwidth | speed-up |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");

  const std::vector<Shape> shapes = {{"llama-110m", 12, 12, 64}, {"TinyLlama-1.1B", 32, 4, 64}};
  for (const Shape& sh : shapes) {
    if (std::string(sh.model).find(only) == std::string::npos) continue;
    for (int context : {512, 2048, 8192}) {
      const int blocks_per_seq = (context + block_size - 1) / block_size;
      const int num_blocks = blocks_per_seq * num_seqs;
      const size_t cache_floats =
          static_cast<size_t>(num_blocks) * sh.num_kv_heads * block_size * sh.head_dim;
      const auto k_cache = filled(cache_floats, 0.5f);
      const auto v_cache = filled(cache_floats, -0.25f);
      std::vector<int32_t> ids(static_cast<size_t>(num_blocks));
      std::iota(ids.begin(), ids.end(), 0);
      std::shuffle(ids.begin(), ids.end(), std::mt19937(1));
      std::vector<k::AttentionSequence> seqs;
      for (int s = 0; s < num_seqs; ++s) {
        seqs.push_back({.query_start = s,
                        .num_queries = 1,
                        .context_len = context,
                        .block_table = ids.data() + static_cast<size_t>(s) * blocks_per_seq});
      }
      const int64_t row = int64_t{sh.num_q_heads} * sh.head_dim;
      const auto q = filled(static_cast<size_t>(num_seqs * row), 0.1f);
      std::vector<float> out(q.size());
      // Each path planned once, as a step does; a timed call is one layer's run.
      const k::AttentionPlanParams shape{.num_q_heads = sh.num_q_heads,
                                         .num_kv_heads = sh.num_kv_heads,
                                         .head_dim = sh.head_dim, .block_size = block_size};
      k::AttentionPlanParams as_prefill = shape, as_decode = shape;
      as_prefill.prefill_seqs = as_decode.decode_seqs = seqs.data();
      as_prefill.num_prefill_seqs = as_decode.num_decode_seqs = num_seqs;
      k::AttentionPlan prefill_plan, decode_plan;
      be.plan_attention(as_prefill, prefill_plan);
      be.plan_attention(as_decode, decode_plan);
      k::bind_attention_plan(prefill_plan, prefill_plan.metadata.data());
      k::bind_attention_plan(decode_plan, decode_plan.metadata.data());
      std::vector<float> workspace(static_cast<size_t>(
          std::max(prefill_plan.workspace_bytes, decode_plan.workspace_bytes) / 4));
      k::PagedAttentionParams params{
          .q = q.data(),
          .q_stride = row,
          .k_cache = k_cache.data(),
          .v_cache = v_cache.data(),
          .out = out.data(),
          .out_stride = row,
          .plan = &prefill_plan,
          .workspace = workspace.data(),
          .num_q_heads = sh.num_q_heads,
          .num_kv_heads = sh.num_kv_heads,
          .head_dim = sh.head_dim,
          .block_size = block_size,
          .scale = 1.0f / std::sqrt(static_cast<float>(sh.head_dim))};
      const double kv_bytes = 2.0 * num_seqs * context * sh.num_kv_heads * sh.head_dim * 4;
      const int calls = std::max(5, static_cast<int>(budget_s * bw * 1e9 / kv_bytes / 2));
      const double t_prefill = best_call_s(calls, [&] { be.paged_attention(params); });
      params.plan = &decode_plan;
      const double t_decode = best_call_s(calls, [&] { be.decode_attention(params); });
      const double gbs = t_decode > 0 ? kv_bytes / t_decode / 1e9 : 0.0;
      std::printf("| %s | %d | %.0f | %.0f | %.0f | %.1f | %.0f%% | %.2fx |\n", sh.model, context,
                  kv_bytes / 1048576.0, t_prefill * 1e6, t_decode * 1e6, gbs, 100.0 * gbs / bw,
                  t_decode > 0 ? t_prefill / t_decode : 0.0);
      std::fflush(stdout);
    }
  }
  return 0;
}
