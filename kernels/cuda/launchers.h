// Kernel launchers implemented in the .cu files, called by the host-side entry points
// (cuda_backend.cpp, gemm.cpp). Each takes its params struct (device pointers), the plan
// the host computed and the stream. Internal to kernels/cuda.
#pragma once

#include <cuda_runtime.h>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/plan/gemm_w4a16_plan.h"
#include "kernels/cuda/plan/launch_plan.h"
#include "kernels/ops.h"

namespace strata::kernels::cuda {

// gemm.cpp (host code around cuBLAS)
void gemm(const GemmParams& p);
// gemm_w8a8.cpp (host code around cuBLASLt)
void gemm_w8a8(const GemmW8A8Params& p);
int64_t gemm_w8a8_workspace_bytes(int64_t m, int64_t n, int64_t k, int64_t group_size);

// elementwise.cu
void launch_rmsnorm(const RmsNormParams& p, cudaStream_t stream);
void launch_rope(const RopeParams& p, cudaStream_t stream);
void launch_silu_mul(const SiluMulParams& p, cudaStream_t stream);
void launch_kv_cache_write(const KvCacheWriteParams& p, cudaStream_t stream);
void launch_embedding(const EmbeddingParams& p, cudaStream_t stream);
void launch_add(const AddParams& p, cudaStream_t stream);
void launch_gather_rows(const GatherRowsParams& p, cudaStream_t stream);
// out[i, j] = 16-bit(x[i, j]) for the GEMM's activations; dtype kBF16 or kF16.
void launch_convert_rows(const float* x, int64_t ldx, int64_t m, int64_t k, DType dtype,
                         void* out, cudaStream_t stream);
// y[i, j] += bias[j].
void launch_add_bias(float* y, int64_t ldy, int64_t m, int64_t n, const float* bias,
                     cudaStream_t stream);

// w8a8.cu
void launch_rmsnorm_quant(const RmsNormQuantParams& p, cudaStream_t stream);
void launch_silu_mul_quant(const SiluMulQuantParams& p, cudaStream_t stream);
// y from the per-channel int32 products acc [m, n] (row-major): ops.h's epilogue.
void launch_w8a8_epilogue(const GemmW8A8Params& p, const int32_t* acc, cudaStream_t stream);
// The whole GEMM in one kernel, any group size and shape (the per-group path).
void launch_w8a8_direct(const GemmW8A8Params& p, cudaStream_t stream);

// attention.cu, over p.plan (bound: sequences and items in device memory). The decode
// launch shape is `plan`'s, and p.workspace holds plan.workspace_bytes.
void launch_prefill_attention(const PagedAttentionParams& p, cudaStream_t stream);
void launch_decode_attention(const PagedAttentionParams& p, const DecodePlan& plan,
                             cudaStream_t stream);

// gemm_w4a16.cpp (host code: the path, the cuBLAS calls of larger m)
void gemm_w4a16(const GemmW4A16Params& p);

// gemm_w4a16.cu, on kBlocks weights. The GEMV (plan.gemv, m ≤ kW4GemvMaxRows) reads the
// activations as bf16 [m, k] from x16 and writes y with bias and accumulate as p says.
void launch_w4a16_gemv(const GemmW4A16Params& p, const void* x16, const W4A16Plan& plan,
                       cudaStream_t stream);
// Weight rows [0, rows) of w, dequantized exactly as hi + lo (each [rows, k] bf16).
void launch_w4a16_dequant_split(const void* w, int group_size, int64_t rows, int64_t k, void* hi,
                                void* lo, cudaStream_t stream);

}  // namespace strata::kernels::cuda
