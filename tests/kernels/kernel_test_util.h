// Helpers for the CPU kernel tests: seeded random data, and running a body once per CPU
// code path this machine supports (forced through the dispatcher).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "kernels/cpu/isa.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"

namespace strata::kernels::testing {

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// The CPU backend's gemm with a workspace of the size it asks for, as the model provides.
inline void cpu_gemm(GemmParams p) {
  const KernelBackend& be = cpu_backend();
  const int64_t bytes = be.gemm_workspace_bytes(p.w_dtype, p.m, p.k);
  const Tensor workspace = Tensor::empty(DType::kU8, {bytes > 0 ? bytes : 1});
  p.workspace = workspace.raw();
  be.gemm(p);
}

// Runs body() under every supported ISA path, then restores the best one and all cores.
template <class Body>
void for_each_isa(Body body) {
  using cpu::CpuIsa;
  for (CpuIsa isa : {CpuIsa::kScalar, CpuIsa::kAvx2, CpuIsa::kAvx512}) {
    if (!cpu::force_cpu_isa(isa)) continue;
    SCOPED_TRACE(std::string("isa=") + std::string(cpu::cpu_isa_name(isa)));
    body(isa);
  }
  for (CpuIsa isa : {CpuIsa::kAvx512, CpuIsa::kAvx2, CpuIsa::kScalar}) {
    if (cpu::force_cpu_isa(isa)) break;
  }
  set_cpu_threads(0);
}

}  // namespace strata::kernels::testing
