// Measures the machine's memory read bandwidth, the ceiling for memory-bound kernels such
// as decode GEMV; benchmarks report kernel throughput as a fraction of it.
#pragma once

#include <cstddef>

namespace strata::kernels::cpu {

// Streams a buffer of `bytes` (use several times the last-level cache) with `threads`
// OpenMP threads, each reading its own contiguous share with wide SIMD loads; returns the
// best of 12 runs (robust to a preempted thread) in GB/s (1e9 bytes per second).
double measure_read_bandwidth_gb_per_s(size_t bytes, int threads);

}  // namespace strata::kernels::cpu
