// Host-side planning of the CUDA W4A16 GEMM (kernels/ops.h, GemmW4A16Params; kernels in
// kernels/cuda/gemm_w4a16.cu): which path an m takes, its grid, and where each buffer sits
// in the caller's workspace. Plain C++ so tests/gpu/cuda_plan_test.cpp checks it anywhere.
//
//   m ≤ kW4GemvMaxRows: the GEMV kernel. A thread block of kW4GemvWarps warps owns
//     kW4GemvRowsPerBlock weight rows; warp w takes every kW4GemvWarps-th step of 32
//     4-byte words (256 weights) along k, so the warps stream adjacent bytes together, and
//     the warps' sums are added in warp order. Workspace: x in bf16.
//   larger m: kW4DequantRows weight rows at a time dequantized exactly into bf16 hi and lo
//     matrices, each slice through two cuBLAS GEMMs. Workspace: x in bf16, hi, lo.
#pragma once

#include <cstdint>

namespace strata::kernels::cuda {

inline constexpr int kW4GemvMaxRows = 8;
inline constexpr int kW4GemvWarps = 4;
inline constexpr int kW4GemvRowsPerBlock = 2;
inline constexpr int64_t kW4DequantRows = 1024;

struct W4A16Plan {
  bool gemv = false;
  int64_t blocks = 0;        // GEMV grid: one thread block per kW4GemvRowsPerBlock rows
  int threads = 0;           // GEMV block size
  int64_t slice_rows = 0;    // cuBLAS path: weight rows dequantized per slice
  int64_t hi_offset = 0;     // byte offsets in the workspace, 256-aligned ([slice_rows, k] bf16)
  int64_t lo_offset = 0;
  int64_t workspace_bytes = 0;
};

W4A16Plan plan_gemm_w4a16(int64_t m, int64_t n, int64_t k);

// Bytes of GemmW4A16Params::workspace for an [m, k] input: enough for any n.
int64_t gemm_w4a16_workspace_bytes(int64_t m, int64_t k);

}  // namespace strata::kernels::cuda
