// W8A8 kernels: RMSNorm and SiLU·mul fused with per-token int8 quantization, the epilogue
// after cuBLASLt's int32 GEMM, and the direct per-group GEMM. CPU twins:
// kernels/cpu/activation_quant.cpp, kernels/cpu/gemm_w8a8*.cpp. Every fp32 step is an
// explicit round-to-nearest intrinsic (__fmul_rn, __fmaf_rn, ...), which nvcc never fuses,
// so the steps are ops.h's one for one.
#include <cfloat>

#include "common/check.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/launchers.h"
#include "kernels/cuda/plan/w8a8_plan.h"

namespace strata::kernels::cuda {
namespace {

constexpr int kFlatThreads = 256;

struct Int8Scale {
  float scale, inv;
};

__device__ __forceinline__ Int8Scale int8_scale(float amax) {
  if (!(amax >= kInt8MinAmax)) return {0.0f, 0.0f};
  return {__fdiv_rn(amax, 127.0f), __fdiv_rn(127.0f, amax)};
}

__device__ __forceinline__ int8_t quantize_int8(float v, float inv) {
  const int q = __float2int_rn(__fmul_rn(v, inv));  // round half to even
  return static_cast<int8_t>(q > 127 ? 127 : q < -127 ? -127 : q);
}

// Quantizes the block's row value(j), j < n, into out; thread 0 writes the scale. `value`
// gives the same bits on both passes.
template <class Value>
__device__ void quantize_row(int64_t n, Value value, int8_t* out, float* scale) {
  float amax = 0.0f;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) amax = fmaxf(amax, fabsf(value(j)));
  const Int8Scale s = int8_scale(block_max(amax, 0.0f));
  if (threadIdx.x == 0) *scale = s.scale;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) out[j] = quantize_int8(value(j), s.inv);
}

// As rmsnorm_kernel (elementwise.cu): squares summed in double, then x · inv_rms · weight.
__global__ void rmsnorm_quant_kernel(const float* x, int64_t ldx, const float* weight,
                                     int8_t* out, int64_t ldo, float* scale, int64_t n,
                                     float eps) {
  const int64_t row = blockIdx.x;
  const float* xr = x + row * ldx;
  double sum_sq = 0.0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    const float v = xr[j];
    sum_sq += static_cast<double>(v) * v;
  }
  sum_sq = block_sum(sum_sq);
  const auto inv_rms =
      static_cast<float>(1.0 / sqrt(sum_sq / static_cast<double>(n) + static_cast<double>(eps)));
  quantize_row(
      n, [=](int64_t j) { return __fmul_rn(__fmul_rn(xr[j], inv_rms), weight[j]); },
      out + row * ldo, scale + row);
}

// As silu_mul_kernel (elementwise.cu).
__global__ void silu_mul_quant_kernel(const float* gate_up, int64_t ld_in, int8_t* out,
                                      int64_t ld_out, float* scale, int64_t f) {
  const int64_t row = blockIdx.x;
  const float* gate = gate_up + row * ld_in;
  const float* up = gate + f;
  quantize_row(
      f,
      [=](int64_t j) {
        const float g = gate[j];
        return __fmul_rn(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))), up[j]);
      },
      out + row * ld_out, scale + row);
}

// ops.h's epilogue from one group's dot: v = dot · x_scale, + bias, then y + v.
__device__ __forceinline__ void store_output(float dot, const GemmW8A8Params& p, int64_t i,
                                             int64_t j) {
  float v = __fmul_rn(dot, p.x_scale[i]);
  if (p.bias != nullptr) v = __fadd_rn(v, p.bias[j]);
  float* out = p.y + i * p.ldy + j;
  if (p.accumulate) v = __fadd_rn(*out, v);
  *out = v;
}

// After cuBLASLt: acc [m, n] row-major int32, one scale per row of W.
__global__ void w8a8_epilogue_kernel(const int32_t* acc, GemmW8A8Params p) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= p.m * p.n) return;
  const int64_t i = idx / p.n, j = idx % p.n;
  store_output(__fmul_rn(__int2float_rn(acc[idx]), p.w_scale[j]), p, i, j);
}

// One warp per output (i, j): per group, lanes stride over k, an exact int32 warp sum, then
// the group's fma in k order (every lane holds the same dot; lane 0 stores).
__global__ void w8a8_direct_kernel(GemmW8A8Params p, int64_t group_k, int64_t groups) {
  const int64_t o = blockIdx.x * static_cast<int64_t>(kW8A8WarpsPerBlock) + threadIdx.x / 32;
  if (o >= p.m * p.n) return;
  const int64_t i = o / p.n, j = o % p.n;
  const int lane = threadIdx.x % 32;
  const int8_t* x = p.x + i * p.ldx;
  const int8_t* w = static_cast<const int8_t*>(p.w) + j * p.k;
  float dot = 0.0f;
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t end = (g + 1) * group_k < p.k ? (g + 1) * group_k : p.k;
    int32_t acc = 0;
    for (int64_t kk = g * group_k + lane; kk < end; kk += 32) acc += int32_t{x[kk]} * w[kk];
    const float f = __int2float_rn(warp_sum(acc));
    const float s = p.w_scale[j * groups + g];
    dot = g == 0 ? __fmul_rn(f, s) : __fmaf_rn(f, s, dot);
  }
  if (lane == 0) store_output(dot, p, i, j);
}

}  // namespace

void launch_rmsnorm_quant(const RmsNormQuantParams& p, cudaStream_t stream) {
  if (p.m == 0) return;
  const RowPlan plan = plan_rows(p.m, p.n);
  rmsnorm_quant_kernel<<<grid_dim(plan.blocks), plan.threads, 0, stream>>>(
      p.x, p.ldx, p.weight, p.out, p.ldo, p.scale, p.n, p.eps);
  STRATA_CUDA_CHECK_LAUNCH();
}

void launch_silu_mul_quant(const SiluMulQuantParams& p, cudaStream_t stream) {
  if (p.t == 0) return;
  const RowPlan plan = plan_rows(p.t, p.f);
  silu_mul_quant_kernel<<<grid_dim(plan.blocks), plan.threads, 0, stream>>>(
      p.gate_up, p.ld_in, p.out, p.ld_out, p.scale, p.f);
  STRATA_CUDA_CHECK_LAUNCH();
}

void launch_w8a8_epilogue(const GemmW8A8Params& p, const int32_t* acc, cudaStream_t stream) {
  const int64_t blocks = plan_flat_blocks(p.m * p.n, kFlatThreads);
  if (blocks == 0) return;
  w8a8_epilogue_kernel<<<grid_dim(blocks), kFlatThreads, 0, stream>>>(acc, p);
  STRATA_CUDA_CHECK_LAUNCH();
}

void launch_w8a8_direct(const GemmW8A8Params& p, cudaStream_t stream) {
  const int64_t blocks = plan_w8a8_direct_blocks(p.m, p.n);
  if (blocks == 0) return;
  const int64_t group_k = p.group_size == 0 ? p.k : p.group_size;
  w8a8_direct_kernel<<<grid_dim(blocks), kW8A8WarpsPerBlock * 32, 0, stream>>>(
      p, group_k, w8a8_num_groups(p.k, p.group_size));
  STRATA_CUDA_CHECK_LAUNCH();
}

}  // namespace strata::kernels::cuda
