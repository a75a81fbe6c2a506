// Which instruction-set path the CPU kernels run, chosen once from CPUID and overridable
// (env STRATA_CPU_ISA at first use, force_cpu_isa() in tests and benchmarks).
//
// Code in *_avx512.cpp / *_avx2.cpp is compiled with those ISA flags and must only be
// entered after cpu_isa() says so. Those files avoid std:: templates and other inline
// functions with external linkage: the linker keeps one copy of such a function, and if it
// kept the AVX-512 one the baseline path would fault on an AVX2-only machine.
#pragma once

#include <string_view>

namespace strata::kernels::cpu {

enum class CpuIsa { kScalar, kAvx2, kAvx512 };

// The path in use. First call: the best the CPU supports, or STRATA_CPU_ISA if it names a
// supported one (scalar|avx2|avx512).
CpuIsa cpu_isa();

// True when this CPU can run `isa`.
bool cpu_supports(CpuIsa isa);

// Switches every CPU kernel to `isa`; returns false (and changes nothing) if unsupported.
bool force_cpu_isa(CpuIsa isa);

std::string_view cpu_isa_name(CpuIsa isa);

// Threads for a parallel region: set_cpu_threads()'s value, or when 0 OMP_NUM_THREADS if
// set, else all cores.
int num_threads();

}  // namespace strata::kernels::cpu
