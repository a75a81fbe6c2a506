// CPU kernel benchmark: memory read bandwidth, decode GEMV (bf16 weights) as a fraction of
// it, and prefill GEMM throughput for bf16 and fp32 weights next to OpenBLAS sgemm measured
// in the same run; then W8A8 (int8 weights and activations) beside bf16 on TinyLlama's
// shapes. Prints Markdown tables.
//
// Decode weights rotate through enough copies to exceed the last-level cache several times,
// so every call streams its weights from DRAM as in serving, not from L3.
#include <cblas.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "kernels/cpu/bandwidth_probe.h"
#include "kernels/dtype.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"

namespace {

using strata::DType;
using strata::kernels::GemmParams;

struct Shape {
  const char* model;
  int64_t k, n;
};

// What the model provides every GEMM: a workspace of the size the backend asks for.
strata::Tensor gemm_workspace(DType dtype, int64_t m, int64_t k) {
  const int64_t bytes = strata::kernels::cpu_backend().gemm_workspace_bytes(dtype, m, k);
  return strata::Tensor::empty(DType::kU8, {bytes > 0 ? bytes : 1});
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Median time of fn(i) over reps · calls individually timed calls, after one warm-up call.
// The median, not the mean: this machine is shared, and a call whose thread was preempted
// by another process waits a whole scheduler tick.
template <class Fn>
double time_calls(int reps, int calls, Fn fn) {
  fn(0);
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    for (int i = 0; i < calls; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      fn(i);
      times.push_back(seconds_since(t0));
    }
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = strata::f32_to_bf16(v[i]);
  return out;
}

namespace k = strata::kernels;

// One decode GEMV row: the same weights row-major and packed, each streamed from `copies`
// replicas so that every call reads DRAM, not cache.
void bench_decode_shape(const Shape& s, double stream_mib, double bw) {
  const auto& be = k::cpu_backend();
  const size_t elems = static_cast<size_t>(s.n * s.k);
  const double bytes = static_cast<double>(elems) * 2;
  const int copies = std::max(1, static_cast<int>(stream_mib * 1048576.0 / bytes + 0.5));
  // One random matrix, replicated: values do not matter, distinct addresses do.
  const auto w1 = to_bf16(random_floats(elems, 1));
  std::vector<uint16_t> w_packed1(elems);
  const k::WeightLayout packed_layout = be.pack_weights(
      {.src = w1.data(), .dst = w_packed1.data(), .dtype = DType::kBF16, .n = s.n, .k = s.k});
  const auto x = random_floats(static_cast<size_t>(s.k), 2);
  std::vector<float> y(static_cast<size_t>(s.n));
  const int calls = std::max(copies, static_cast<int>(2e9 / bytes / 40));
  const strata::Tensor work = gemm_workspace(DType::kBF16, 1, s.k);
  auto time_layout = [&](const std::vector<uint16_t>& one, k::WeightLayout layout) {
    std::vector<uint16_t> w(elems * copies);
    for (int c = 0; c < copies; ++c) std::copy(one.begin(), one.end(), w.begin() + c * elems);
    return time_calls(5, calls, [&](int i) {
      be.gemm({.x = x.data(), .ldx = s.k, .w = w.data() + (i % copies) * elems,
               .w_dtype = DType::kBF16, .w_layout = layout, .y = y.data(), .ldy = s.n,
               .m = 1, .n = s.n, .k = s.k, .workspace = work.raw()});
    });
  };
  const double t_row = time_layout(w1, k::WeightLayout::kRowMajor);
  const double t_packed = time_layout(w_packed1, packed_layout);
  const double gbs_row = bytes / t_row / 1e9, gbs_packed = bytes / t_packed / 1e9;
  std::printf("| %s | %ld | %ld | %.1f | %.1f | %.1f | %.0f%% | %.1f | %.1f | %.0f%% |\n",
              s.model, s.k, s.n, bytes / 1048576.0, t_row * 1e6, gbs_row,
              100.0 * gbs_row / bw, t_packed * 1e6, gbs_packed, 100.0 * gbs_packed / bw);
  std::fflush(stdout);
}

// One prefill GEMM row: ours in bf16 and fp32 against OpenBLAS sgemm.
void bench_prefill_shape(int64_t m, const Shape& s) {
  const auto& be = k::cpu_backend();
  const auto wf = random_floats(static_cast<size_t>(s.n * s.k), 3);
  const auto wb = to_bf16(wf);
  const auto x = random_floats(static_cast<size_t>(m * s.k), 4);
  std::vector<float> y(static_cast<size_t>(m * s.n));
  const double flop = 2.0 * m * s.n * s.k;
  const int reps = flop > 2e10 ? 3 : 5;
  auto ours = [&](DType dtype, const void* w) {
    const strata::Tensor work = gemm_workspace(dtype, m, s.k);
    return flop / 1e9 / time_calls(reps, 1, [&](int) {
      be.gemm({.x = x.data(), .ldx = s.k, .w = w, .w_dtype = dtype, .y = y.data(),
               .ldy = s.n, .m = m, .n = s.n, .k = s.k, .workspace = work.raw()});
    });
  };
  const double bf16 = ours(DType::kBF16, wb.data());
  const double f32 = ours(DType::kF32, wf.data());
  const double blas = flop / 1e9 / time_calls(reps, 1, [&](int) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m),
                static_cast<int>(s.n), static_cast<int>(s.k), 1.0f, x.data(),
                static_cast<int>(s.k), wf.data(), static_cast<int>(s.k), 0.0f, y.data(),
                static_cast<int>(s.n));
  });
  std::printf("| %ld | %ld | %ld | %.0f | %.0f | %.0f |\n", m, s.k, s.n, bf16, f32, blas);
  std::fflush(stdout);
}

// ---- W8A8 ----

// 256-byte aligned bytes (packed weights, workspaces).
using Bytes = std::unique_ptr<unsigned char, decltype(&std::free)>;
Bytes aligned_bytes(int64_t bytes) {
  auto* p = static_cast<unsigned char*>(std::aligned_alloc(256, (bytes + 255) / 256 * 256));
  std::fill_n(p, (bytes + 255) / 256 * 256, 0);
  return Bytes(p, &std::free);
}

// Quantized and packed once; `copies` replicas laid end to end so decode reads DRAM.
struct PackedW8 {
  Bytes data{nullptr, &std::free};
  int64_t bytes = 0;  // one replica
};
PackedW8 pack_w8(const Shape& s, int64_t group_size, int copies) {
  const auto& be = k::cpu_backend();
  const auto wf = random_floats(static_cast<size_t>(s.n * s.k), 5);
  std::vector<int8_t> q(wf.size());
  std::vector<float> scales(static_cast<size_t>(s.n * k::w8a8_num_groups(s.k, group_size)));
  k::quantize_weights_int8({.w = wf.data(), .n = s.n, .k = s.k, .group_size = group_size,
                            .q = q.data(), .scales = scales.data()});
  PackedW8 packed;
  packed.bytes = (be.w8a8_packed_bytes(s.n, s.k, group_size) + 255) / 256 * 256;
  packed.data = aligned_bytes(packed.bytes * copies);
  for (int c = 0; c < copies; ++c) {
    be.pack_w8a8({.q = q.data(), .scales = scales.data(),
                  .dst = packed.data.get() + c * packed.bytes, .n = s.n, .k = s.k,
                  .group_size = group_size});
  }
  return packed;
}

// Median seconds of one gemm_w8a8 of m rows (replica i % copies).
double time_w8a8(const Shape& s, int64_t m, int64_t group_size, int copies, int calls, int reps) {
  const auto& be = k::cpu_backend();
  const PackedW8 w = pack_w8(s, group_size, copies);
  std::vector<int8_t> x(static_cast<size_t>(m * s.k));
  std::mt19937 rng(6);
  for (auto& v : x) v = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
  const std::vector<float> x_scale(static_cast<size_t>(m), 0.01f);
  std::vector<float> y(static_cast<size_t>(m * s.n));
  const Bytes work = aligned_bytes(be.gemm_w8a8_workspace_bytes(m, s.n, s.k, group_size));
  return time_calls(reps, calls, [&](int i) {
    be.gemm_w8a8({.x = x.data(), .ldx = s.k, .x_scale = x_scale.data(),
                  .w = w.data.get() + (i % copies) * w.bytes, .group_size = group_size,
                  .y = y.data(), .ldy = s.n, .m = m, .n = s.n, .k = s.k,
                  .workspace = work.get()});
  });
}

// Median seconds of one bf16 gemm of m rows over packed (kTiled) weights.
double time_bf16(const Shape& s, int64_t m, int copies, int calls, int reps) {
  const auto& be = k::cpu_backend();
  const size_t elems = static_cast<size_t>(s.n * s.k);
  const auto w1 = to_bf16(random_floats(elems, 1));
  std::vector<uint16_t> w(elems * copies);
  k::WeightLayout layout = k::WeightLayout::kRowMajor;
  for (int c = 0; c < copies; ++c) {
    layout = be.pack_weights({.src = w1.data(), .dst = w.data() + c * elems,
                              .dtype = DType::kBF16, .n = s.n, .k = s.k});
  }
  const auto x = random_floats(static_cast<size_t>(m * s.k), 2);
  std::vector<float> y(static_cast<size_t>(m * s.n));
  return time_calls(reps, calls, [&](int i) {
    be.gemm({.x = x.data(), .ldx = s.k, .w = w.data() + (i % copies) * elems,
             .w_dtype = DType::kBF16, .w_layout = layout, .y = y.data(), .ldy = s.n,
             .m = m, .n = s.n, .k = s.k});
  });
}

// One decode row: bf16 and W8A8 (per channel, and per group of 32 as GGUF Q8_0), weights
// streamed from DRAM; GB/s counts the bytes each format reads.
void bench_w8a8_decode(const Shape& s, double stream_mib, double bw) {
  const double bf16_bytes = 2.0 * s.n * s.k;
  const int copies = std::max(1, static_cast<int>(stream_mib * 1048576.0 / (bf16_bytes / 2) + 0.5));
  const int calls = std::max(copies, static_cast<int>(2e9 / bf16_bytes / 40));
  const double t_bf16 = time_bf16(s, 1, copies, calls, 5);
  const double t_w8 = time_w8a8(s, 1, 0, copies, calls, 5);
  const double t_g32 = time_w8a8(s, 1, 32, copies, calls, 5);
  const double w8_bytes = static_cast<double>(k::cpu_backend().w8a8_packed_bytes(s.n, s.k, 0));
  const double g32_bytes = static_cast<double>(k::cpu_backend().w8a8_packed_bytes(s.n, s.k, 32));
  std::printf("| %s | %ld | %ld | %.1f | %.1f | %.1f | %.1f | %.0f%% | %.2fx | %.1f | %.1f "
              "| %.2fx |\n",
              s.model, s.k, s.n, t_bf16 * 1e6, bf16_bytes / t_bf16 / 1e9, t_w8 * 1e6,
              w8_bytes / t_w8 / 1e9, 100.0 * w8_bytes / t_w8 / 1e9 / bw, t_bf16 / t_w8,
              t_g32 * 1e6, g32_bytes / t_g32 / 1e9, t_bf16 / t_g32);
  std::fflush(stdout);
}

void bench_w8a8_prefill(int64_t m, const Shape& s) {
  const double ops = 2.0 * m * s.n * s.k;
  const int reps = ops > 2e10 ? 3 : 5;
  const double bf16 = ops / 1e9 / time_bf16(s, m, 1, 1, reps);
  const double w8 = ops / 1e9 / time_w8a8(s, m, 0, 1, 1, reps);
  const double g32 = ops / 1e9 / time_w8a8(s, m, 32, 1, 1, reps);
  std::printf("| %s | %ld | %ld | %ld | %.0f | %.0f | %.2fx | %.0f | %.2fx |\n", s.model, m, s.k,
              s.n, bf16, w8, w8 / bf16, g32, g32 / bf16);
  std::fflush(stdout);
}

void bench_w8a8(double stream_mib, double bw) {
  const std::vector<Shape> shapes = {{"qkv", 2048, 2560}, {"gate_up", 2048, 11264},
                                     {"down", 5632, 2048}, {"o", 2048, 2048}};
  std::printf("\n### W8A8 decode GEMV (m = 1, TinyLlama-1.1B, weights streamed from DRAM)\n\n");
  std::printf("Packed weights both: bf16 kTiled, int8 kInt8Packed (per channel; g32 = a scale\n"
              "per 32 k, as GGUF Q8_0). GB/s counts each format's own bytes, scales included.\n\n");
  std::printf("| matrix | k | n | bf16 us | GB/s | w8a8 us | GB/s | %% of bandwidth | vs bf16 "
              "| g32 us | GB/s | vs bf16 |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const Shape& s : shapes) bench_w8a8_decode(s, stream_mib, bw);
  std::printf("\n### W8A8 prefill GEMM (m = 256, TinyLlama-1.1B): bf16 GFLOP/s, int8 GOP/s\n\n");
  std::printf("| matrix | m | k | n | bf16 | w8a8 | vs bf16 | g32 | vs bf16 |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const Shape& s : shapes) bench_w8a8_prefill(256, s);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"strata CPU kernel benchmark"};
  int threads = 2;
  double stream_mib = 256;
  bool skip_prefill = false;
  app.add_option("--threads", threads, "CPU threads for our kernels and OpenBLAS")->capture_default_str();
  app.add_option("--stream-mib", stream_mib,
                 "decode: MiB of weight copies rotated per shape (beyond the LLC)")
      ->capture_default_str();
  app.add_flag("--skip-prefill", skip_prefill, "only bandwidth and decode");
  bool only_w8a8 = false;
  app.add_flag("--only-w8a8", only_w8a8, "only bandwidth and the W8A8 tables");
  CLI11_PARSE(app, argc, argv);

  k::set_cpu_threads(threads);
  openblas_set_num_threads(threads);

  const double bw = k::cpu::measure_read_bandwidth_gb_per_s(size_t{512} << 20, threads);
  std::printf("CPU path: %s, threads: %d\n\n", std::string(k::cpu_isa_name()).c_str(), threads);
  std::printf("Measured read bandwidth (512 MiB buffer, best of 12): **%.1f GB/s**\n\n", bw);
  if (only_w8a8) {
    bench_w8a8(stream_mib, bw);
    return 0;
  }

  std::printf("### Decode GEMV (m = 1, bf16 weights, weights streamed from DRAM)\n\n");
  std::printf("Row-major weights as checkpoints store them, and packed (kTiled) as the model\n"
              "loader leaves them for this backend.\n\n");
  std::printf("| model | k | n | weights MiB | row-major us | GB/s | %% | packed us | GB/s | %% of bandwidth |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  const std::vector<Shape> decode = {
      {"llama-110m", 768, 2304},  {"llama-110m", 768, 768},     {"llama-110m", 768, 4096},
      {"llama-110m", 768, 32000}, {"llama-110m", 2048, 768},    {"TinyLlama-1.1B", 2048, 2560},
      {"TinyLlama-1.1B", 2048, 2048}, {"TinyLlama-1.1B", 2048, 11264},
      {"TinyLlama-1.1B", 2048, 32000}, {"TinyLlama-1.1B", 5632, 2048}};
  for (const Shape& s : decode) bench_decode_shape(s, stream_mib, bw);
  if (skip_prefill) return 0;

  std::printf("\n### Prefill GEMM GFLOP/s (TinyLlama-1.1B shapes)\n\n");
  std::printf("| m | k | n | ours bf16 | ours fp32 | OpenBLAS sgemm fp32 |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|\n");
  const std::vector<Shape> prefill = {{"", 2048, 2560}, {"", 2048, 2048}, {"", 2048, 11264},
                                      {"", 2048, 32000}, {"", 5632, 2048}};
  for (int64_t m : {128, 512}) {
    for (const Shape& s : prefill) bench_prefill_shape(m, s);
  }
  bench_w8a8(stream_mib, bw);
  return 0;
}
