// Host-side planning of the CUDA W8A8 GEMM (kernels/ops.h), plain C++ like launch_plan.h so
// that its rules are unit-tested without a GPU (tests/gpu/cuda_plan_test.cpp).
//
// Per channel: cuBLASLt int8 × int8 → int32 [m, n] into the caller's workspace, then one
// epilogue kernel applies ops.h's fp32 steps. cuBLASLt's int8 (IMMA) kernels in the regular
// column-major ordering take only "TN" problems with every leading dimension and the
// dimensions m and k (in its terms: our n and k) multiples of 4 and 4-byte aligned
// pointers; a per-channel call outside that is refused with a message (no slow path hides
// behind a shape). Per group: a direct kernel, one warp per output, correct but not fast.
#pragma once

#include <cstdint>
#include <string>

#include "kernels/ops.h"

namespace strata::kernels::cuda {

// cuBLASLt's own workspace inside the caller's: int8 GEMMs without split-k need little.
inline constexpr int64_t kW8A8LtWorkspaceBytes = int64_t{4} << 20;

// Empty when cuBLASLt takes this per-channel problem; else the field, the rule and the value.
std::string w8a8_cublaslt_error(const GemmW8A8Params& p);

// Per channel: the int32 products (256-byte aligned) and cuBLASLt's workspace after them.
// Per group: nothing (the direct kernel keeps its sums in registers); 256 bytes so that a
// workspace pointer always exists.
int64_t w8a8_workspace_bytes(int64_t m, int64_t n, int64_t k, int64_t group_size);
inline int64_t w8a8_lt_workspace_offset(int64_t m, int64_t n) {
  return (m * n * 4 + 255) / 256 * 256;
}

// The direct kernel: warp w of block b computes output b · kW8A8WarpsPerBlock + w (row-major
// over [m, n]).
inline constexpr int kW8A8WarpsPerBlock = 8;
int64_t plan_w8a8_direct_blocks(int64_t m, int64_t n);

}  // namespace strata::kernels::cuda
