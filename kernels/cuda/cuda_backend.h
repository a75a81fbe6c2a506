// The CUDA backend: the operator set of kernels/ops.h on device buffers, plus the ops only
// the GPU path has (fused RMSNorm + residual add, W8A8 int8 GEMM, sampling on device).
// This header has no CUDA types, so code above kernels/ can include it in any build; the
// definitions exist only when strata is built with STRATA_CUDA (STRATA_HAVE_CUDA=1).
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
//   - GEMM scratch comes from a per-thread workspace that only grows. Before capturing a
//     graph, call reserve_workspace(); growing inside a capture is an error.
//
// Numerics versus the CPU twin (cpu_backend()), which the GPU tests check:
//   - fp32 GEMM is plain FP32 (no TF32); bf16/fp16 weights round the activations to the
//     weights' type and accumulate in fp32 on tensor cores;
//   - RMSNorm sums squares in double (as the CPU does), RoPE computes angles in double;
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

// Grows this thread's GEMM scratch to at least this size now (not during a graph capture).
void reserve_workspace(int64_t scratch_bytes);

// residual += x; out = rmsnorm(residual) · weight. CPU twin: an add, then cpu rmsnorm.
struct RmsNormResidualParams {
  const float* x = nullptr;       // [m, n], row stride ldx: the layer's output
  int64_t ldx = 0;
  float* residual = nullptr;      // [m, n], row stride ldr: updated in place
  int64_t ldr = 0;
  const float* weight = nullptr;  // [n]
  float* out = nullptr;           // [m, n], row stride ldo
  int64_t ldo = 0;
  int64_t m = 0, n = 0;
  float eps = 1e-5f;
};
void rmsnorm_residual(const RmsNormResidualParams& p);

// W8A8: y = (x_q · W_qᵀ accumulated in int32) · x_scale[i] · w_scale[j] (+ bias) (+ y).
struct GemmInt8Params {
  const int8_t* x = nullptr;       // [m, k], row stride ldx (a multiple of 4)
  int64_t ldx = 0;
  const int8_t* w = nullptr;       // [n, k], contiguous
  const float* x_scale = nullptr;  // [m] per-token scales
  const float* w_scale = nullptr;  // [n] per-channel scales
  const float* bias = nullptr;     // [n] or nullptr
  float* y = nullptr;              // [m, n], row stride ldy
  int64_t ldy = 0;
  int64_t m = 0, n = 0, k = 0;     // k a multiple of 4
  bool accumulate = false;
};
void gemm_int8(const GemmInt8Params& p);

// Per-row x_q = round(x / s), s = max|x| / 127 (1 for an all-zero row): the W8A8
// activation quantizer.
struct QuantizeInt8Params {
  const float* x = nullptr;  // [m, k], row stride ldx
  int64_t ldx = 0;
  int8_t* out = nullptr;     // [m, k], contiguous
  float* scale = nullptr;    // [m]
  int64_t m = 0, k = 0;
};
void quantize_rows_int8(const QuantizeInt8Params& p);

// Greedy: out[i] = argmax of row i, lowest id on ties, NaN counted as -inf.
struct ArgmaxParams {
  const float* logits = nullptr;  // [m, vocab], row stride ld
  int64_t ld = 0, m = 0, vocab = 0;
  int32_t* out = nullptr;         // [m]
};
void argmax(const ArgmaxParams& p);

// Top-k / top-p / min-p sampling per row, the CPU sampler's rule (worker/sampler.h): rank
// by logit descending then id ascending; weights exp((x − x_max) / T) in double; keep the
// top k, then the smallest rank prefix reaching top_p of their mass, then w >= min_p;
// draw u · kept mass against the inverse CDF in rank order. Rows with temperature 0 are
// greedy. Penalties are applied before this (on the host today).
struct SampleParams {
  const float* logits = nullptr;       // [m, vocab], row stride ld
  int64_t ld = 0, m = 0, vocab = 0;
  const float* temperature = nullptr;  // [m]; 0 ⇒ argmax
  const int32_t* top_k = nullptr;      // [m]; <= 0 ⇒ off
  const float* top_p = nullptr;        // [m]; 1 ⇒ off
  const float* min_p = nullptr;        // [m]; 0 ⇒ off
  const double* uniform = nullptr;     // [m] in [0, 1): the request's SamplerRng draw
  int32_t* out = nullptr;              // [m]
};
void sample(const SampleParams& p);

}  // namespace cuda
}  // namespace strata::kernels
