#include "kernels/cpu/isa.h"

#include <omp.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "kernels/ops.h"

namespace strata::kernels::cpu {
namespace {

CpuIsa best_supported() {
  if (cpu_supports(CpuIsa::kAvx512)) return CpuIsa::kAvx512;
  if (cpu_supports(CpuIsa::kAvx2)) return CpuIsa::kAvx2;
  return CpuIsa::kScalar;
}

CpuIsa initial_isa() {
  CpuIsa isa = best_supported();
  // getenv at the edge: this is the one knob, read once.
  if (const char* env = std::getenv("STRATA_CPU_ISA"); env && *env) {
    const std::string name = env;
    CpuIsa wanted = isa;
    if (name == "scalar") wanted = CpuIsa::kScalar;
    if (name == "avx2") wanted = CpuIsa::kAvx2;
    if (name == "avx512") wanted = CpuIsa::kAvx512;
    if (cpu_supports(wanted)) isa = wanted;
  }
  return isa;
}

std::atomic<int>& isa_slot() {
  static std::atomic<int> slot{static_cast<int>(initial_isa())};
  return slot;
}

std::atomic<int> g_threads{0};

}  // namespace

bool cpu_supports(CpuIsa isa) {
  __builtin_cpu_init();
  switch (isa) {
    case CpuIsa::kScalar:
      return true;
    case CpuIsa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case CpuIsa::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512vnni") &&
             __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx2");
  }
  return false;
}

CpuIsa cpu_isa() { return static_cast<CpuIsa>(isa_slot().load(std::memory_order_relaxed)); }

bool force_cpu_isa(CpuIsa isa) {
  if (!cpu_supports(isa)) return false;
  isa_slot().store(static_cast<int>(isa), std::memory_order_relaxed);
  return true;
}

std::string_view cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kScalar: return "scalar";
    case CpuIsa::kAvx2: return "avx2";
    case CpuIsa::kAvx512: return "avx512-bf16";
  }
  return "unknown";
}

int num_threads() {
  const int t = g_threads.load(std::memory_order_relaxed);
  // omp_get_max_threads() is every core unless OMP_NUM_THREADS says otherwise, as users of
  // OpenMP programs expect (the sanitizer lanes and MPI ranks sharing a host set it).
  return t > 0 ? t : omp_get_max_threads();
}

}  // namespace strata::kernels::cpu

namespace strata::kernels {

std::string_view cpu_isa_name() { return cpu::cpu_isa_name(cpu::cpu_isa()); }

void set_cpu_threads(int num_threads) {
  cpu::g_threads.store(num_threads > 0 ? num_threads : 0, std::memory_order_relaxed);
}

int cpu_threads() { return cpu::num_threads(); }

}  // namespace strata::kernels
