// Sampling on device: greedy argmax and top-k / top-p / min-p draws, one thread block per
// row. CPU twin: worker/sampler.cpp's sample_token (the GPU tests compare the two).
//
// Selection without sorting: every token has a 64-bit rank key (logit descending, then id
// ascending, as the CPU sampler's rank_key), and each question "which token sits at this
// rank / crosses this mass" is a bisection over the key space: 64 rounds, each one pass
// over the row with a block-wide sum in a fixed tree. Deterministic for a given row, and
// no workspace. (A radix select would take 8 passes instead of 64; left for later.)
#include <cfloat>
#include <cstdint>

#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/launchers.h"

namespace strata::kernels::cuda {
namespace {

__device__ __forceinline__ float clean(float x) { return isnan(x) ? -INFINITY : x; }

// Ascending key order == logit descending, then id ascending (worker/sampler.cpp).
__device__ __forceinline__ uint64_t rank_key(float x, int32_t id) {
  if (x == 0.0f) x = 0.0f;
  const uint32_t bits = __float_as_uint(x);
  const uint32_t ascending = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
  return static_cast<uint64_t>(~ascending) << 32 | static_cast<uint32_t>(id);
}

struct Best {
  float value;
  int32_t id;
};

__device__ __forceinline__ Best better(Best a, Best b) {
  return (b.value > a.value || (b.value == a.value && b.id < a.id)) ? b : a;
}

// Lowest id among the maxima; NaN counts as -inf.
__device__ int32_t row_argmax(const float* x, int64_t vocab) {
  __shared__ Best partial[32];
  Best best{-INFINITY, INT32_MAX};
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
    best = better(best, Best{clean(x[j]), static_cast<int32_t>(j)});
  }
  for (int offset = 16; offset > 0; offset /= 2) {
    const Best other{__shfl_xor_sync(0xffffffffu, best.value, offset),
                     __shfl_xor_sync(0xffffffffu, best.id, offset)};
    best = better(best, other);
  }
  __syncthreads();
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = best;
  __syncthreads();
  Best total{-INFINITY, INT32_MAX};
  for (int w = 0; w < static_cast<int>(blockDim.x) / 32; ++w) total = better(total, partial[w]);
  return total.id;
}

__global__ void argmax_kernel(const float* logits, int64_t ld, int64_t vocab, int32_t* out) {
  const int32_t id = row_argmax(logits + blockIdx.x * ld, vocab);
  if (threadIdx.x == 0) out[blockIdx.x] = id;
}

struct RowView {
  const float* x;
  int64_t vocab;
  float x_max;
  double inv_t;
  uint64_t cand_max_key;  // top-k: keys <= this are candidates
  uint64_t kept_max_key;  // top-p: keys <= this are kept
  double min_w;           // min-p: weights >= this are kept
};

__device__ __forceinline__ double weight(const RowView& r, float x) {
  return exp((static_cast<double>(x) - r.x_max) * r.inv_t);
}

// Σ w over tokens with key <= limit that pass the row's filters (kept_max_key, min_w).
__device__ double mass_upto(const RowView& r, uint64_t limit) {
  double sum = 0.0;
  for (int64_t j = threadIdx.x; j < r.vocab; j += blockDim.x) {
    const float x = clean(r.x[j]);
    const uint64_t key = rank_key(x, static_cast<int32_t>(j));
    if (key > limit || key > r.kept_max_key || key > r.cand_max_key) continue;
    const double w = weight(r, x);
    if (w >= r.min_w) sum += w;
  }
  return block_sum(sum);
}

__device__ int64_t count_upto(const RowView& r, uint64_t limit) {
  int64_t n = 0;
  for (int64_t j = threadIdx.x; j < r.vocab; j += blockDim.x) {
    n += rank_key(clean(r.x[j]), static_cast<int32_t>(j)) <= limit ? 1 : 0;
  }
  return block_sum(n);
}

// Smallest key K with pred(K); pred monotone, true at UINT64_MAX.
template <class Pred>
__device__ uint64_t bisect(Pred pred) {
  uint64_t lo = 0, hi = UINT64_MAX;
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    if (pred(mid)) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

// The worst-ranked kept token with a positive weight: when rounding leaves the target at
// the very top of the mass (the CPU sampler does the same).
__device__ uint64_t last_kept_key(const RowView& r) {
  uint64_t best = 0;
  for (int64_t j = threadIdx.x; j < r.vocab; j += blockDim.x) {
    const float x = clean(r.x[j]);
    const uint64_t key = rank_key(x, static_cast<int32_t>(j));
    if (key > r.kept_max_key || key > r.cand_max_key) continue;
    const double w = weight(r, x);
    if (w >= r.min_w && w > 0.0 && key > best) best = key;
  }
  return block_max(best, uint64_t{0});
}

__global__ void sample_kernel(SampleParams p) {
  const int64_t row = blockIdx.x;
  const float* x = p.logits + row * p.ld;
  const float temperature = p.temperature[row];
  const int32_t greedy = row_argmax(x, p.vocab);
  const float x_max = clean(x[greedy]);
  if (temperature == 0.0f || x_max == -INFINITY) {
    // Greedy; or every token masked, where the CPU sampler returns id 0.
    if (threadIdx.x == 0) p.out[row] = temperature == 0.0f ? greedy : 0;
    return;
  }
  RowView r{x, p.vocab, x_max, 1.0 / static_cast<double>(temperature), UINT64_MAX, UINT64_MAX,
            0.0};
  const int32_t top_k = p.top_k[row];
  if (top_k > 0 && top_k < p.vocab) {
    r.cand_max_key = bisect([&](uint64_t k) { return count_upto(r, k) >= top_k; });
  }
  const double total = mass_upto(r, UINT64_MAX);
  const float top_p = p.top_p[row];
  if (top_p < 1.0f) {
    const double target = static_cast<double>(top_p) * total;
    r.kept_max_key = bisect([&](uint64_t k) { return k == UINT64_MAX || mass_upto(r, k) >= target; });
  }
  if (p.min_p[row] > 0.0f) r.min_w = static_cast<double>(p.min_p[row]);
  const double kept = mass_upto(r, UINT64_MAX);
  const double target = p.uniform[row] * kept;
  uint64_t key = bisect([&](uint64_t k) { return k == UINT64_MAX || mass_upto(r, k) > target; });
  if (key == UINT64_MAX) key = last_kept_key(r);
  if (threadIdx.x == 0) p.out[row] = static_cast<int32_t>(static_cast<uint32_t>(key));
}

}  // namespace

void launch_argmax(const ArgmaxParams& p, cudaStream_t stream) {
  if (p.m == 0) return;
  argmax_kernel<<<grid_dim(p.m), kSamplingThreads, 0, stream>>>(p.logits, p.ld, p.vocab, p.out);
  STRATA_CUDA_CHECK_LAUNCH();
}

void launch_sample(const SampleParams& p, cudaStream_t stream) {
  if (p.m == 0) return;
  sample_kernel<<<grid_dim(p.m), kSamplingThreads, 0, stream>>>(p);
  STRATA_CUDA_CHECK_LAUNCH();
}

}  // namespace strata::kernels::cuda
