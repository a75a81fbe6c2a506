// Decode attention benchmark: the dedicated decode kernel against the generic (prefill)
// paged-attention path at query length 1, for 32 sequences of 512 / 2048 / 8192 cached
// tokens on llama-110m and TinyLlama-1.1B shapes, block size 16, shuffled block tables, for
// each KV cache dtype asked (--kv-dtypes; the first is the baseline of the last column).
// Reports time per call, KV bytes read, GB/s and the fraction of the read bandwidth
// measured in the same run (the floor for a kernel that must read every cached K and V).
// Prints a Markdown table.
//
//   bench_attention --kv-dtypes bf16,int8
//
// Every call reads the whole cache once; the smallest case (96 MiB) already exceeds the
// last-level cache, so calls stream K and V from DRAM as in serving.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cpu/bandwidth_probe.h"
#include "kernels/kv_cache_format.h"
#include "kernels/ops.h"

namespace {

namespace k = strata::kernels;
using strata::DType;

struct Shape {
  const char* model;
  int num_q_heads, num_kv_heads, head_dim;
};

struct Options {
  int threads = 2, num_seqs = 32, block_size = 16;
  double budget_s = 1.5;
  std::string only, kv_dtypes = "bf16,int8";
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

// Values do not matter for timing; distinct pages touched do. Filled in parallel so first
// touch spreads pages like the engine's cache.
std::vector<float> filled(size_t n, float value) {
  std::vector<float> v(n);
#pragma omp parallel for
  for (int64_t i = 0; i < static_cast<int64_t>(n); ++i)
    v[static_cast<size_t>(i)] = value * static_cast<float>(i % 97) / 97.0f;
  return v;
}

// One layer's K (or V) cache of num_blocks blocks in `dtype`, written through the KV-write
// kernel as the engine writes it, a block's worth of slots at a time.
std::vector<unsigned char> typed_cache(const Shape& sh, DType dtype, int block_size,
                                       int num_blocks, float value) {
  const int64_t tile = k::kv_tile_bytes(dtype, block_size, sh.head_dim);
  std::vector<unsigned char> cache(static_cast<size_t>(tile * num_blocks * sh.num_kv_heads));
  const int64_t row = int64_t{sh.num_kv_heads} * sh.head_dim;
  const std::vector<float> rows = filled(static_cast<size_t>(block_size * row), value);
  std::vector<int32_t> slots(static_cast<size_t>(block_size));
#pragma omp parallel for firstprivate(slots)
  for (int b = 0; b < num_blocks; ++b) {
    std::iota(slots.begin(), slots.end(), b * block_size);
    k::cpu_backend().kv_cache_write({.k = rows.data(), .v = rows.data(), .k_stride = row,
                                     .v_stride = row, .k_cache = cache.data(),
                                     .v_cache = cache.data(), .cache_dtype = dtype,
                                     .slot_mapping = slots.data(), .t = block_size,
                                     .num_kv_heads = sh.num_kv_heads, .head_dim = sh.head_dim,
                                     .block_size = block_size});
  }
  return cache;
}

struct Timing {
  double prefill_s = 0, decode_s = 0, kv_bytes = 0;
};

// Both kernels over num_seqs sequences of `context` tokens in a `dtype` cache.
Timing time_cell(const Options& o, const Shape& sh, int context, DType dtype, double bw) {
  const int blocks_per_seq = (context + o.block_size - 1) / o.block_size;
  const int num_blocks = blocks_per_seq * o.num_seqs;
  const auto k_cache = typed_cache(sh, dtype, o.block_size, num_blocks, 0.5f);
  const auto v_cache = typed_cache(sh, dtype, o.block_size, num_blocks, -0.25f);
  std::vector<int32_t> ids(static_cast<size_t>(num_blocks));
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), std::mt19937(1));
  std::vector<k::AttentionSequence> seqs;
  for (int s = 0; s < o.num_seqs; ++s) {
    seqs.push_back({.query_start = s, .num_queries = 1, .context_len = context,
                    .block_table = ids.data() + static_cast<size_t>(s) * blocks_per_seq});
  }
  const int64_t row = int64_t{sh.num_q_heads} * sh.head_dim;
  const auto q = filled(static_cast<size_t>(o.num_seqs * row), 0.1f);
  std::vector<float> out(q.size());
  // Each path planned once, as a step does; a timed call is one layer's run.
  const k::AttentionPlanParams shape{.num_q_heads = sh.num_q_heads, .num_kv_heads = sh.num_kv_heads,
                                     .head_dim = sh.head_dim, .block_size = o.block_size};
  k::AttentionPlanParams as_prefill = shape, as_decode = shape;
  as_prefill.prefill_seqs = as_decode.decode_seqs = seqs.data();
  as_prefill.num_prefill_seqs = as_decode.num_decode_seqs = o.num_seqs;
  k::AttentionPlan prefill_plan, decode_plan;
  const auto& be = k::cpu_backend();
  be.plan_attention(as_prefill, prefill_plan);
  be.plan_attention(as_decode, decode_plan);
  k::bind_attention_plan(prefill_plan, prefill_plan.metadata.data());
  k::bind_attention_plan(decode_plan, decode_plan.metadata.data());
  std::vector<float> workspace(static_cast<size_t>(
      std::max(prefill_plan.workspace_bytes, decode_plan.workspace_bytes) / 4));
  k::PagedAttentionParams params{
      .q = q.data(), .q_stride = row, .k_cache = k_cache.data(), .v_cache = v_cache.data(),
      .cache_dtype = dtype, .out = out.data(), .out_stride = row, .plan = &prefill_plan,
      .workspace = workspace.data(), .num_q_heads = sh.num_q_heads,
      .num_kv_heads = sh.num_kv_heads, .head_dim = sh.head_dim, .block_size = o.block_size,
      .scale = 1.0f / std::sqrt(static_cast<float>(sh.head_dim))};
  Timing t;
  t.kv_bytes = 2.0 * static_cast<double>(k::kv_tile_bytes(dtype, o.block_size, sh.head_dim)) *
               sh.num_kv_heads * context / o.block_size * o.num_seqs;
  const int calls = std::max(5, static_cast<int>(o.budget_s * bw * 1e9 / t.kv_bytes / 2));
  t.prefill_s = best_call_s(calls, [&] { be.paged_attention(params); });
  params.plan = &decode_plan;
  t.decode_s = best_call_s(calls, [&] { be.decode_attention(params); });
  return t;
}

std::vector<DType> parse_kv_dtypes(const std::string& list) {
  std::vector<DType> out;
  std::istringstream in(list);
  for (std::string name; std::getline(in, name, ',');) {
    const auto dtype = name == "int8" ? std::optional<DType>(DType::kI8) : strata::parse_dtype(name);
    if (dtype && k::is_kv_cache_dtype(*dtype)) out.push_back(*dtype);
    else std::fprintf(stderr, "--kv-dtypes: skipping %s (fp32, bf16, fp16 or int8)\n", name.c_str());
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"strata decode attention benchmark"};
  Options o;
  app.add_option("--threads", o.threads, "CPU threads")->capture_default_str();
  app.add_option("--seqs", o.num_seqs, "sequences per call")->capture_default_str();
  app.add_option("--block-size", o.block_size, "KV block size")->capture_default_str();
  app.add_option("--budget-s", o.budget_s, "seconds of timed calls per cell")->capture_default_str();
  app.add_option("--only", o.only, "run only models whose name contains this");
  app.add_option("--kv-dtypes", o.kv_dtypes, "KV cache dtypes, the first the baseline")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  const std::vector<DType> dtypes = parse_kv_dtypes(o.kv_dtypes);
  if (dtypes.empty()) return 2;

  k::set_cpu_threads(o.threads);
  const double bw = k::cpu::measure_read_bandwidth_gb_per_s(size_t{1} << 30, o.threads);
  std::printf("CPU path: %s, threads: %d, sequences: %d, block size: %d\n\n",
              std::string(k::cpu_isa_name()).c_str(), o.threads, o.num_seqs, o.block_size);
  std::printf("Measured read bandwidth (1 GiB buffer, best of 12): **%.1f GB/s**\n\n", bw);
  std::printf("| model | context | KV dtype | KV MiB | prefill path us | decode us | decode GB/s | "
              "%% of bandwidth | speed-up | decode vs %s |\n",
              std::string(strata::dtype_name(dtypes[0])).c_str());
  std::printf("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
  const std::vector<Shape> shapes = {{"llama-110m", 12, 12, 64}, {"TinyLlama-1.1B", 32, 4, 64}};
  for (const Shape& sh : shapes) {
    if (std::string(sh.model).find(o.only) == std::string::npos) continue;
    for (int context : {512, 2048, 8192}) {
      double baseline_s = 0;
      for (DType dtype : dtypes) {
        const Timing t = time_cell(o, sh, context, dtype, bw);
        if (baseline_s == 0) baseline_s = t.decode_s;
        const double gbs = t.kv_bytes / t.decode_s / 1e9;
        std::printf("| %s | %d | %s | %.0f | %.0f | %.0f | %.1f | %.0f%% | %.2fx | %.2fx |\n",
                    sh.model, context, std::string(strata::dtype_name(dtype)).c_str(),
                    t.kv_bytes / 1048576.0, t.prefill_s * 1e6, t.decode_s * 1e6, gbs,
                    100.0 * gbs / bw, t.prefill_s / t.decode_s, baseline_s / t.decode_s);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
