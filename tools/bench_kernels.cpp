// CPU kernel benchmark: memory read bandwidth, decode GEMV (bf16 weights) as a fraction of
// it, and prefill GEMM throughput for bf16 and fp32 weights next to OpenBLAS sgemm measured
// in the same run; then W8A8 (int8 weights and activations) beside bf16 on TinyLlama's
// shapes, and W4A16 (int4 weights) decode and prefill beside bf16. Prints Markdown tables.
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
#include "kernels/quant_int4.h"
#include "kernels/tensor.h"

namespace {

using strata::DType;
using strata::kernels::GemmParams;

struct Shape {
  const char* model;
  int64_t k, n;
};

// What the model provides every GEMM: a workspace of the size the backend asks for.
strata::Tensor workspace_of(int64_t bytes) {
  return strata::Tensor::empty(DType::kU8, {bytes > 0 ? bytes : 1});
}
strata::Tensor gemm_workspace(DType dtype, int64_t m, int64_t k) {
  return workspace_of(strata::kernels::cpu_backend().gemm_workspace_bytes(dtype, m, k));
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

// ---- W4A16 -------------------------------------------------------------------------

// Random weights quantized (group g) and packed for the CPU gemm_w4a16.
std::vector<uint8_t> int4_tiled_weights(const Shape& s, int g) {
  const auto w = random_floats(static_cast<size_t>(s.n * s.k), 5);
  std::vector<uint8_t> blocks(static_cast<size_t>(k::int4_blocks_bytes(s.n, s.k, g)));
  const strata::Status st = k::quantize_int4({.src = w.data(), .dtype = DType::kF32,
                                              .dst = blocks.data(), .group_size = g,
                                              .n = s.n, .k = s.k});
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.to_string().c_str());
    std::exit(1);
  }
  std::vector<uint8_t> tiled(static_cast<size_t>(k::int4_tiled_bytes(s.n, s.k, g)));
  k::cpu_backend().pack_w4a16(
      {.src = blocks.data(), .dst = tiled.data(), .group_size = g, .n = s.n, .k = s.k});
  return tiled;
}

// The bf16 gemm on packed weights: the baseline the W4A16 rows are compared with.
void bf16_gemm(const float* x, const uint16_t* w, float* y, int64_t m, const Shape& s,
               void* workspace) {
  k::cpu_backend().gemm({.x = x, .ldx = s.k, .w = w, .w_dtype = DType::kBF16,
                         .w_layout = k::WeightLayout::kTiled, .y = y, .ldy = s.n, .m = m,
                         .n = s.n, .k = s.k, .workspace = workspace});
}

// `one` replicated until the copies exceed stream_mib, so that a call on each copy in turn
// streams its weights from DRAM.
struct Replicas {
  Replicas(const std::vector<uint8_t>& one, double stream_mib)
      : size(one.size()),
        copies(std::max(1, static_cast<int>(stream_mib * 1048576.0 / size + 0.5))) {
    data.resize(size * copies);
    for (int c = 0; c < copies; ++c) std::copy(one.begin(), one.end(), data.begin() + c * size);
  }
  const uint8_t* at(int i) const { return data.data() + (i % copies) * size; }
  size_t size;
  int copies;
  std::vector<uint8_t> data;
};

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

// Median seconds of a(i) and of b(i), called alternately so that both see the same load on
// this shared machine (a burst from another process slows both, not one).
template <class A, class B>
std::pair<double, double> time_alternating(int reps, int calls, A a, B b) {
  a(0);
  b(0);
  std::vector<double> ta, tb;
  for (int i = 0; i < reps * calls; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    a(i);
    ta.push_back(seconds_since(t0));
    t0 = std::chrono::steady_clock::now();
    b(i);
    tb.push_back(seconds_since(t0));
  }
  return {median(std::move(ta)), median(std::move(tb))};
}

struct DecodeTimes {
  double bf16_s = 0, w4_s = 0;
};

// One decode row: bf16 packed against W4A16 (group g), both streamed from DRAM.
DecodeTimes bench_w4a16_decode_shape(const Shape& s, int g, double stream_mib, double bw) {
  const auto& be = k::cpu_backend();
  const auto x = random_floats(static_cast<size_t>(s.k), 2);
  std::vector<float> y(static_cast<size_t>(s.n));
  const auto w16 = to_bf16(random_floats(static_cast<size_t>(s.n * s.k), 1));
  std::vector<uint8_t> packed16(w16.size() * 2);
  be.pack_weights({.src = w16.data(), .dst = packed16.data(), .dtype = DType::kBF16, .n = s.n,
                   .k = s.k});
  const Replicas r16(packed16, stream_mib), r4(int4_tiled_weights(s, g), stream_mib);
  const double bytes16 = static_cast<double>(r16.size), bytes4 = static_cast<double>(r4.size);
  const strata::Tensor ws = workspace_of(be.gemm_w4a16_workspace_bytes(1, s.k));
  const strata::Tensor ws16 = gemm_workspace(DType::kBF16, 1, s.k);
  const int calls = std::max({r16.copies, r4.copies, static_cast<int>(2e9 / bytes16 / 40)});
  const auto [t16, t4] = time_alternating(
      5, calls,
      [&](int i) {
        bf16_gemm(x.data(), reinterpret_cast<const uint16_t*>(r16.at(i)), y.data(), 1, s, ws16.raw());
      },
      [&](int i) {
        be.gemm_w4a16({.x = x.data(), .ldx = s.k, .w = r4.at(i),
                       .w_layout = k::Int4Layout::kTiled, .group_size = g, .y = y.data(),
                       .ldy = s.n, .m = 1, .n = s.n, .k = s.k, .workspace = ws.raw()});
      });
  std::printf("| %ld | %ld | %d | %.2f | %.1f | %.1f | %.1f | %.1f | %.0f%% | %.2fx |\n", s.k, s.n,
              g, bytes4 / 1048576.0, t16 * 1e6, bytes16 / t16 / 1e9, t4 * 1e6,
              bytes4 / t4 / 1e9, 100.0 * bytes4 / t4 / 1e9 / bw, t16 / t4);
  std::fflush(stdout);
  return {t16, t4};
}

// One prefill row: GFLOP/s of bf16 packed and of W4A16 (group g) at m rows.
void bench_w4a16_prefill_shape(int64_t m, const Shape& s, int g) {
  const auto& be = k::cpu_backend();
  const auto x = random_floats(static_cast<size_t>(m * s.k), 4);
  std::vector<float> y(static_cast<size_t>(m * s.n));
  const auto w16 = to_bf16(random_floats(static_cast<size_t>(s.n * s.k), 3));
  std::vector<uint16_t> packed16(w16.size());
  be.pack_weights({.src = w16.data(), .dst = packed16.data(), .dtype = DType::kBF16, .n = s.n,
                   .k = s.k});
  const std::vector<uint8_t> tiled = int4_tiled_weights(s, g);
  const strata::Tensor ws = workspace_of(be.gemm_w4a16_workspace_bytes(m, s.k));
  const strata::Tensor ws16 = gemm_workspace(DType::kBF16, m, s.k);
  const double flop = 2.0 * m * s.n * s.k;
  const auto [t16, t4] = time_alternating(
      flop > 2e10 ? 3 : 5, 1, [&](int) { bf16_gemm(x.data(), packed16.data(), y.data(), m, s, ws16.raw()); },
      [&](int) {
        be.gemm_w4a16({.x = x.data(), .ldx = s.k, .w = tiled.data(),
                       .w_layout = k::Int4Layout::kTiled, .group_size = g, .y = y.data(),
                       .ldy = s.n, .m = m, .n = s.n, .k = s.k, .workspace = ws.raw()});
      });
  const double bf16 = flop / 1e9 / t16, w4 = flop / 1e9 / t4;
  std::printf("| %ld | %ld | %ld | %d | %.0f | %.0f | %.0f%% |\n", m, s.k, s.n, g, bf16, w4,
              100.0 * w4 / bf16);
  std::fflush(stdout);
}

// TinyLlama-1.1B's four projections per layer (QKV, o, gate|up, down), 22 layers: decode
// GEMV time per token, bf16 against W4A16 with groups of 32 (GGUF Q4_0) and 128, then the
// prefill rows.
void bench_w4a16(double stream_mib, double bw, bool skip_prefill) {
  const std::vector<Shape> layer = {{"qkv", 2048, 2560}, {"o", 2048, 2048},
                                    {"gate_up", 2048, 11264}, {"down", 5632, 2048}};
  constexpr int kLayers = 22;
  std::printf("\n### W4A16 decode GEMV (m = 1, TinyLlama-1.1B shapes, weights from DRAM)\n\n");
  std::printf("GB/s counts the bytes each format streams: bf16 packed, or int4 nibbles + fp16\n"
              "scales (4.5 bits per weight at group 32, 4.125 at 128).\n");
  for (int g : {32, 128}) {
    std::printf("\n| k | n | group | int4 MiB | bf16 us | bf16 GB/s | w4a16 us | w4a16 GB/s |"
                " %% of bandwidth | speed-up |\n");
    std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    double t16 = 0, t4 = 0;
    for (const Shape& s : layer) {
      const DecodeTimes t = bench_w4a16_decode_shape(s, g, stream_mib, bw);
      t16 += t.bf16_s;
      t4 += t.w4_s;
    }
    std::printf("| one layer | | %d | | %.0f | | %.0f | | | **%.2fx** |\n\n", g, t16 * 1e6,
                t4 * 1e6, t16 / t4);
    std::printf("The %d layers' GEMMs alone (no attention, no LM head) bound decode at %.1f tok/s "
                "in bf16 and %.1f tok/s in W4A16 (group %d).\n",
                kLayers, 1.0 / (kLayers * t16), 1.0 / (kLayers * t4), g);
  }
  if (skip_prefill) return;
  std::printf("\n### W4A16 prefill GEMM GFLOP/s (m = 256, TinyLlama-1.1B shapes)\n\n");
  std::printf("| m | k | n | group | bf16 packed | w4a16 | w4a16 / bf16 |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|\n");
  for (int g : {32, 128}) {
    for (const Shape& s : layer) bench_w4a16_prefill_shape(256, s, g);
  }
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
  bool only_w8a8 = false, only_w4a16 = false;
  app.add_flag("--only-w8a8", only_w8a8, "only bandwidth and the W8A8 tables");
  app.add_flag("--only-w4a16", only_w4a16, "only bandwidth and the W4A16 tables");
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
  if (only_w4a16) {
    bench_w4a16(stream_mib, bw, skip_prefill);
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
  bench_w4a16(stream_mib, bw, false);
  return 0;
}
