// The CUDA backend: the operator set of kernels/ops.h on device buffers, and the runtime
// entry points the device registry (cuda_runtime.cpp) and the GPU tests need.
// This header has no CUDA types, but its definitions exist only when strata is built with
// STRATA_CUDA: code above kernels/ reaches them through the registry (kernels/device.h).
//
// Contract of every entry point:
//   - tensor pointers (x, w, y, q, caches, block tables, ids, ...) are device pointers;
//   - plan_attention reads host sequence arrays whose block_table pointers are device
//     pointers (or, for a padded decode step, sequences already on the device) and plans on
//     the host (plan/launch_plan.h); the caller uploads the plan's metadata once per step
//     and owns the decode workspace, so every layer's attention launches with no upload and
//     a captured graph replays the same addresses;
//   - work is enqueued on this thread's stream (set_stream) and is asynchronous: results
//     are ready after synchronize() or a later stream-ordered operation;
//   - copy is cudaMemcpy(2D)Async on that stream: from pageable host memory the source is
//     staged before it returns; into pageable host memory it returns when the data is there;
//   - GEMM and attention scratch is the caller's (GemmParams / PagedAttentionParams
//     workspace): no op allocates, so a captured graph replays the same addresses.
//
// Numerics versus the CPU twin (cpu_backend()), which the GPU tests check:
//   - fp32 GEMM is plain FP32 (no TF32); bf16/fp16 weights round the activations to the
//     weights' type and accumulate in fp32 on tensor cores;
//   - W4A16 uses the exact dequantized weights on both of its paths (ops.h): the m ≤ 8 GEMV
//     keeps a row's bits whatever m; larger m goes through cuBLAS as above;
//   - RMSNorm sums squares in double (as the CPU does), RoPE computes angles in double;
//   - W8A8: the GEMM gives the CPU's bits from the same int8 inputs (exact int32 sums, the
//     same fp32 steps); rmsnorm_quant and silu_mul_quant quantize what rmsnorm and silu_mul
//     compute here, so a value near a rounding half may land one step away from the CPU's
//     and a scale may differ in its last bit;
//   - attention uses the same online softmax in fp32 but another summation order, so rows
//     agree within fp32 tolerance, not bit for bit; cuBLAS may pick different algorithms
//     for different m, so the CPU's batch-invariance guarantee is not (yet) kept on GPU.
#pragma once

#include <cstdint>
#include <string>

#include "kernels/ops.h"

namespace strata::kernels {

const KernelBackend& cuda_backend();

namespace cuda {

// Devices visible to this process; 0 (never an error) without a driver or a GPU.
int device_count();
// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)", or "" without a device.
std::string device_description(int device = 0);

// The cudaStream_t this thread launches on; nullptr means the legacy default stream.
void set_stream(void* stream);
void* current_stream();
void synchronize();

}  // namespace cuda
}  // namespace strata::kernels
