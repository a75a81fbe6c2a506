// Peak arithmetic throughput of this CPU, measured: the compute ceiling that benchmarks
// print next to prefill and GEMM figures (a VM does not tell its clock, so it is measured).
#pragma once

namespace strata::kernels::cpu {

// GFLOP/s of back-to-back bf16 dot products (AVX512-BF16 vdpbf16ps, 2 flops per pair) on
// `threads` threads; 0 if the CPU lacks AVX512-BF16.
double measure_bf16_peak_gflops(int threads);

// GFLOP/s of back-to-back fp32 FMAs (AVX-512 if present, else AVX2).
double measure_fp32_peak_gflops(int threads);

}  // namespace strata::kernels::cpu
