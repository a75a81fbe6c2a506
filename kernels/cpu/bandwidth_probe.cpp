#include "kernels/cpu/bandwidth_probe.h"

// GCC 12 reports the undefined lanes inside its own AVX-512 intrinsic headers as
// uninitialized; the warning concerns the header, not this file.
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#include <omp.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels/cpu/isa.h"

namespace strata::kernels::cpu {
namespace {

// Each thread reads its share as kStreams interleaved sequential streams: one stream per
// core leaves the DRAM pipeline underused (too few misses in flight), and the kernels this
// ceiling is compared with read several weight rows at once. The reads feed xors so the
// compiler cannot drop them. target attributes keep the rest of this file baseline.
constexpr size_t kStreams = 8;

__attribute__((target("avx512f"))) uint64_t read_avx512(const char* p, size_t bytes) {
  const size_t seg = bytes / kStreams / 128 * 128;
  __m512i a = _mm512_setzero_si512(), b = a;
  for (size_t i = 0; i < seg; i += 128) {
    for (size_t s = 0; s < kStreams; ++s) {
      a = _mm512_xor_si512(a, _mm512_load_si512(p + s * seg + i));
      b = _mm512_xor_si512(b, _mm512_load_si512(p + s * seg + i + 64));
    }
  }
  const __m512i x = _mm512_xor_si512(a, b);
  return static_cast<uint64_t>(_mm_cvtsi128_si64(_mm512_castsi512_si128(x)));
}

__attribute__((target("avx2"))) uint64_t read_avx2(const char* p, size_t bytes) {
  const size_t seg = bytes / kStreams / 128 * 128;
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  for (size_t i = 0; i < seg; i += 128) {
    for (size_t s = 0; s < kStreams; ++s) {
      const char* q = p + s * seg + i;
      a = _mm256_xor_si256(a, _mm256_load_si256(reinterpret_cast<const __m256i*>(q)));
      b = _mm256_xor_si256(b, _mm256_load_si256(reinterpret_cast<const __m256i*>(q + 32)));
      c = _mm256_xor_si256(c, _mm256_load_si256(reinterpret_cast<const __m256i*>(q + 64)));
      d = _mm256_xor_si256(d, _mm256_load_si256(reinterpret_cast<const __m256i*>(q + 96)));
    }
  }
  const __m256i x = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
  return static_cast<uint64_t>(_mm_cvtsi128_si64(_mm256_castsi256_si128(x)));
}

uint64_t read_scalar(const char* p, size_t bytes) {
  uint64_t acc = 0;
  for (size_t i = 0; i + 8 <= bytes; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, sizeof v);
    acc ^= v;
  }
  return acc;
}

}  // namespace

double measure_read_bandwidth_gb_per_s(size_t bytes, int threads) {
  if (threads <= 0) threads = num_threads();
  bytes = (bytes + 4095) / 4096 * 4096;
  char* buffer = static_cast<char*>(std::aligned_alloc(4096, bytes));
  if (buffer == nullptr) return 0.0;
  const bool avx512 = cpu_supports(CpuIsa::kAvx512);
  const bool avx2 = cpu_supports(CpuIsa::kAvx2);
  const size_t share = bytes / static_cast<size_t>(threads) / (kStreams * 4096) * (kStreams * 4096);
  // First touch by the reading thread (page placement), nonzero so pages are real.
#pragma omp parallel num_threads(threads)
  std::memset(buffer + share * static_cast<size_t>(omp_get_thread_num()), 1, share);

  double best_s = 1e30;
  uint64_t sink = 0;
  for (int run = 0; run < 12; ++run) {
    const auto start = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
    {
      const char* mine = buffer + share * static_cast<size_t>(omp_get_thread_num());
      const uint64_t v = avx512 ? read_avx512(mine, share)
                         : avx2 ? read_avx2(mine, share)
                                : read_scalar(mine, share);
#pragma omp atomic
      sink ^= v;  // published so the reads have an observable result
    }
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (s < best_s) best_s = s;
  }
  std::free(buffer);
  if (sink == 0x5eed) best_s *= 1.0;  // keeps `sink` (and so the loads) alive
  return static_cast<double>(share) * threads / best_s / 1e9;
}

}  // namespace strata::kernels::cpu
