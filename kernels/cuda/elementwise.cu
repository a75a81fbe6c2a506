// Row-wise and element-wise kernels: RMSNorm, RoPE, SiLU·mul, KV-cache write (with the
// cache dtype's conversion or int8 quantization), embedding, residual add, row gather, and
// the GEMM's conversion and bias helpers. CPU twins: kernels/cpu/elementwise.cpp and
// kernels/cpu/kv_cache_write.cpp.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cfloat>

#include "common/check.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/launchers.h"
#include "kernels/kv_cache_format.h"

namespace strata::kernels::cuda {
namespace {

constexpr int kFlatThreads = 256;

// Sum of squares in double, as the CPU twin; the scale in double, rounded to float once.
__global__ void rmsnorm_kernel(const float* x, int64_t ldx, const float* weight, float* out,
                               int64_t ldo, int64_t n, float eps) {
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
  float* o = out + row * ldo;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    o[j] = __fmul_rn(__fmul_rn(xr[j], inv_rms), weight[j]);
  }
}

// One block per token: cos/sin per pair once (angles in double), then every q and k head.
// Products are rounded separately (no FMA), as the CPU twin computes them.
__global__ void rope_kernel(float* q, int64_t q_stride, float* k, int64_t k_stride,
                            const int32_t* positions, const double* inv_freq, int num_q_heads,
                            int num_kv_heads, int head_dim) {
  extern __shared__ float cos_sin[];  // [half][2]
  const int64_t t = blockIdx.x;
  const int half = head_dim / 2;
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    const double theta = static_cast<double>(positions[t]) * inv_freq[i];
    cos_sin[2 * i] = static_cast<float>(cos(theta));
    cos_sin[2 * i + 1] = static_cast<float>(sin(theta));
  }
  __syncthreads();
  const int q_pairs = q != nullptr ? num_q_heads * half : 0;
  const int k_pairs = k != nullptr ? num_kv_heads * half : 0;
  for (int idx = threadIdx.x; idx < q_pairs + k_pairs; idx += blockDim.x) {
    const bool is_q = idx < q_pairs;
    const int pair = is_q ? idx : idx - q_pairs;
    const int h = pair / half, i = pair % half;
    float* v = (is_q ? q + t * q_stride : k + t * k_stride) + static_cast<int64_t>(h) * head_dim;
    const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
    const float a = v[2 * i], b = v[2 * i + 1];
    v[2 * i] = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
    v[2 * i + 1] = __fadd_rn(__fmul_rn(a, s), __fmul_rn(b, c));
  }
}

__global__ void silu_mul_kernel(const float* gate_up, int64_t ld_in, float* out, int64_t ld_out,
                                int64_t t, int64_t f) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= t * f) return;
  const int64_t row = idx / f, j = idx % f;
  const float g = gate_up[row * ld_in + j];
  const float up = gate_up[row * ld_in + f + j];
  out[row * ld_out + j] = __fmul_rn(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))), up);
}

// Stores one head_dim row into row `row` of a KV tile in the cache dtype, by the rules of
// kernels/kv_cache_format.h (the CPU twin: kernels/cpu/kv_cache_write.cpp). Called by the
// whole thread block; int8 takes one thread per scale group, which reads its channels alone.
__device__ void store_kv_row(const float* x, DType dtype, int block_size, int head_dim, int row,
                             char* tile) {
  const int64_t at = static_cast<int64_t>(row) * head_dim;
  if (dtype == DType::kI8) {
    auto* q = reinterpret_cast<int8_t*>(tile) + at;
    auto* scales = reinterpret_cast<__half*>(tile + kv_tile_value_bytes(dtype, block_size, head_dim)) +
                   static_cast<int64_t>(row) * kv_scale_groups(head_dim);
    for (int g = threadIdx.x; g < kv_scale_groups(head_dim); g += blockDim.x) {
      const int begin = g * kKvScaleGroup, end = min(head_dim, begin + kKvScaleGroup);
      float absmax = 0.0f;
      for (int i = begin; i < end; ++i) absmax = fmaxf(absmax, fabsf(x[i]));
      const __half scale_bits = __float2half_rn(fminf(__fdiv_rn(absmax, kKvInt8Max), kKvMaxScale));
      scales[g] = scale_bits;
      const float scale = __half2float(scale_bits);
      for (int i = begin; i < end; ++i) {
        const float r = scale > 0.0f ? rintf(__fdiv_rn(x[i], scale)) : 0.0f;
        q[i] = static_cast<int8_t>(fminf(fmaxf(r, -kKvInt8Max), kKvInt8Max));
      }
    }
    return;
  }
  for (int i = threadIdx.x; i < head_dim; i += blockDim.x) {
    if (dtype == DType::kBF16) {
      reinterpret_cast<__nv_bfloat16*>(tile)[at + i] = __float2bfloat16_rn(x[i]);
    } else if (dtype == DType::kF16) {
      reinterpret_cast<__half*>(tile)[at + i] = __float2half_rn(x[i]);
    } else {
      reinterpret_cast<float*>(tile)[at + i] = x[i];
    }
  }
}

// Block (token, kv head): the token's K and V rows of that head into its slot.
__global__ void kv_cache_write_kernel(KvCacheWriteParams p) {
  const int64_t t = blockIdx.x;
  const int h = blockIdx.y;
  const int64_t slot = p.slot_mapping[t];
  if (slot < 0) return;  // padding token
  const int64_t block = slot / p.block_size;
  const int offset = static_cast<int>(slot % p.block_size);
  const int64_t tile = (block * p.num_kv_heads + h) * kv_tile_bytes(p.cache_dtype, p.block_size, p.head_dim);
  const int64_t col = static_cast<int64_t>(h) * p.head_dim;
  store_kv_row(p.k + t * p.k_stride + col, p.cache_dtype, p.block_size, p.head_dim, offset,
               static_cast<char*>(p.k_cache) + tile);
  store_kv_row(p.v + t * p.v_stride + col, p.cache_dtype, p.block_size, p.head_dim, offset,
               static_cast<char*>(p.v_cache) + tile);
}

template <typename T>
__device__ __forceinline__ float to_float(T v);
template <>
__device__ __forceinline__ float to_float(float v) { return v; }
template <>
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
template <>
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }

// Ids outside [id_begin, id_begin + table_rows) belong to another TP rank: zero rows.
template <typename T>
__global__ void embedding_kernel(const int32_t* ids, const T* table, int64_t table_rows,
                                 int64_t id_begin, float* out, int64_t dim) {
  const int64_t t = blockIdx.x;
  const int64_t id = static_cast<int64_t>(ids[t]) - id_begin;
  if (id < 0 || id >= table_rows) {
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) out[t * dim + j] = 0.0f;
    return;
  }
  const T* row = table + id * dim;
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) out[t * dim + j] = to_float(row[j]);
}

__global__ void add_kernel(const float* x, int64_t ldx, float* y, int64_t ldy, int64_t m,
                           int64_t n) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= m * n) return;
  const int64_t i = idx / n, j = idx % n;
  y[i * ldy + j] = __fadd_rn(y[i * ldy + j], x[i * ldx + j]);
}

__global__ void gather_rows_kernel(const float* x, int64_t ldx, const int32_t* rows, float* out,
                                   int64_t ldo, int64_t n) {
  const int64_t i = blockIdx.x;
  const float* src = x + static_cast<int64_t>(rows[i]) * ldx;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) out[i * ldo + j] = src[j];
}

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ __nv_bfloat16 from_float(float v) { return __float2bfloat16_rn(v); }
template <>
__device__ __forceinline__ __half from_float(float v) { return __float2half_rn(v); }

template <typename T>
__global__ void convert_rows_kernel(const float* x, int64_t ldx, int64_t m, int64_t k, T* out) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= m * k) return;
  out[idx] = from_float<T>(x[(idx / k) * ldx + idx % k]);
}

__global__ void add_bias_kernel(float* y, int64_t ldy, int64_t m, int64_t n, const float* bias) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= m * n) return;
  float& v = y[(idx / n) * ldy + idx % n];
  v = __fadd_rn(v, bias[idx % n]);
}

}  // namespace

void launch_rmsnorm(const RmsNormParams& p, cudaStream_t stream) {
  if (p.m == 0) return;
  const RowPlan plan = plan_rows(p.m, p.n);
  rmsnorm_kernel<<<grid_dim(plan.blocks), plan.threads, 0, stream>>>(
      p.x, p.ldx, p.weight, p.out, p.ldo, p.n, p.eps);
  STRATA_CUDA_CHECK_LAUNCH();
}

void launch_rope(const RopeParams& p, cudaStream_t stream) {
  STRATA_CHECK(p.head_dim % 2 == 0);
  if (p.t == 0) return;
  const int64_t pairs = int64_t{p.num_q_heads + p.num_kv_heads} * (p.head_dim / 2);
  const RowPlan plan = plan_rows(p.t, pairs, 2, 256);
  const size_t smem = static_cast<size_t>(p.head_dim) * sizeof(float);
  rope_kernel<<<grid_dim(plan.blocks), plan.threads, smem, stream>>>(
      p.q, p.q_stride, p.k, p.k_stride, p.positions, p.inv_freq, p.num_q_heads, p.num_kv_heads,
      p.head_dim);
  STRATA_CUDA_CHECK_LAUNCH();
}

void launch_silu_mul(const SiluMulParams& p, cudaStream_t stream) {
  const int64_t blocks = plan_flat_blocks(p.t * p.f, kFlatThreads);
  if (blocks == 0) return;
  silu_mul_kernel<<<grid_dim(blocks), kFlatThreads, 0, stream>>>(p.gate_up, p.ld_in, p.out,
                                                                 p.ld_out, p.t, p.f);
  STRATA_CUDA_CHECK_LAUNCH();
}

void launch_kv_cache_write(const KvCacheWriteParams& p, cudaStream_t stream) {
  if (p.t == 0 || p.num_kv_heads == 0) return;
  const dim3 grid(grid_dim(p.t), static_cast<unsigned>(p.num_kv_heads));
  const int threads = p.head_dim >= 128 ? 128 : 64;
  STRATA_CHECK(is_kv_cache_dtype(p.cache_dtype));
  kv_cache_write_kernel<<<grid, threads, 0, stream>>>(p);
  STRATA_CUDA_CHECK_LAUNCH();
}

void launch_embedding(const EmbeddingParams& p, cudaStream_t stream) {
  if (p.t == 0) return;
  const RowPlan plan = plan_rows(p.t, p.dim, 4, 256);
  const unsigned blocks = grid_dim(plan.blocks);
  switch (p.table_dtype) {
    case DType::kF32:
      embedding_kernel<<<blocks, plan.threads, 0, stream>>>(
          p.ids, static_cast<const float*>(p.table), p.table_rows, p.id_begin, p.out, p.dim);
      break;
    case DType::kBF16:
      embedding_kernel<<<blocks, plan.threads, 0, stream>>>(
          p.ids, static_cast<const __nv_bfloat16*>(p.table), p.table_rows, p.id_begin, p.out,
          p.dim);
      break;
    case DType::kF16:
      embedding_kernel<<<blocks, plan.threads, 0, stream>>>(
          p.ids, static_cast<const __half*>(p.table), p.table_rows, p.id_begin, p.out, p.dim);
      break;
    default:
      STRATA_CHECK(false && "embedding table dtype must be fp32, bf16 or fp16");
  }
  STRATA_CUDA_CHECK_LAUNCH();
}

void launch_add(const AddParams& p, cudaStream_t stream) {
  const int64_t blocks = plan_flat_blocks(p.m * p.n, kFlatThreads);
  if (blocks == 0) return;
  add_kernel<<<grid_dim(blocks), kFlatThreads, 0, stream>>>(p.x, p.ldx, p.y, p.ldy, p.m, p.n);
  STRATA_CUDA_CHECK_LAUNCH();
}

void launch_gather_rows(const GatherRowsParams& p, cudaStream_t stream) {
  if (p.m == 0 || p.n == 0) return;
  const RowPlan plan = plan_rows(p.m, p.n, 4, 256);
  gather_rows_kernel<<<grid_dim(plan.blocks), plan.threads, 0, stream>>>(p.x, p.ldx, p.rows,
                                                                         p.out, p.ldo, p.n);
  STRATA_CUDA_CHECK_LAUNCH();
}

void launch_convert_rows(const float* x, int64_t ldx, int64_t m, int64_t k, DType dtype,
                         void* out, cudaStream_t stream) {
  const int64_t blocks = plan_flat_blocks(m * k, kFlatThreads);
  if (blocks == 0) return;
  if (dtype == DType::kBF16) {
    convert_rows_kernel<<<grid_dim(blocks), kFlatThreads, 0, stream>>>(
        x, ldx, m, k, static_cast<__nv_bfloat16*>(out));
  } else {
    STRATA_CHECK(dtype == DType::kF16);
    convert_rows_kernel<<<grid_dim(blocks), kFlatThreads, 0, stream>>>(
        x, ldx, m, k, static_cast<__half*>(out));
  }
  STRATA_CUDA_CHECK_LAUNCH();
}

void launch_add_bias(float* y, int64_t ldy, int64_t m, int64_t n, const float* bias,
                     cudaStream_t stream) {
  const int64_t blocks = plan_flat_blocks(m * n, kFlatThreads);
  if (blocks == 0) return;
  add_bias_kernel<<<grid_dim(blocks), kFlatThreads, 0, stream>>>(y, ldy, m, n, bias);
  STRATA_CUDA_CHECK_LAUNCH();
}

}  // namespace strata::kernels::cuda
