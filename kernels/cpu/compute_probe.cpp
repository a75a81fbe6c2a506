#include "kernels/cpu/compute_probe.h"

#include <omp.h>

#include <algorithm>
#include <chrono>

#include "kernels/cpu/isa.h"

namespace strata::kernels::cpu {

float bf16_dot_loop_avx512(int64_t iterations);
float fp32_fma_loop_avx512(int64_t iterations);
float fp32_fma_loop_avx2(int64_t iterations);

namespace {

// Best of five runs of `loop` on every thread at once; flops_per_iteration per thread.
template <typename Loop>
double measure(int threads, double flops_per_iteration, Loop loop) {
  constexpr int64_t kIterations = 20'000'000;
  double best = 0.0;
  volatile float sink = 0.0f;
  for (int run = 0; run < 5; ++run) {
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
    {
      const float r = loop(kIterations);
      if (r == 12345.0f) sink = r;  // keeps the loop alive
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, flops_per_iteration * kIterations * threads / s / 1e9);
  }
  (void)sink;
  return best;
}

}  // namespace

double measure_bf16_peak_gflops(int threads) {
  if (!cpu_supports(CpuIsa::kAvx512)) return 0.0;
  // 12 instructions × 16 lanes × 2 pairs × 2 flops.
  return measure(threads, 12.0 * 16 * 2 * 2, bf16_dot_loop_avx512);
}

double measure_fp32_peak_gflops(int threads) {
  if (cpu_supports(CpuIsa::kAvx512)) return measure(threads, 12.0 * 16 * 2, fp32_fma_loop_avx512);
  if (cpu_supports(CpuIsa::kAvx2)) return measure(threads, 12.0 * 8 * 2, fp32_fma_loop_avx2);
  return 0.0;
}

}  // namespace strata::kernels::cpu
