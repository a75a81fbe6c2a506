// GPU kernel benchmark (built only with STRATA_CUDA): device copy bandwidth as the
// reference, then decode attention and RMSNorm bandwidth as fractions of it, and the GEMM
// path's TFLOP/s next to cuBLAS's own bf16 GEMM on the same large shape. Prints one line
// per measurement, "BENCH|name|value|unit|reference|fraction", which tools/gpu-check.sh
// gathers into its summary table.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <numeric>
#include <vector>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/ops.h"

namespace {

namespace kn = strata::kernels;

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    std::fprintf(stderr, "bench_gpu_kernels: %s: %s\n", what, cudaGetErrorString(err));
    std::exit(1);
  }
}

template <typename T>
T* device_alloc(size_t n) {
  void* p = nullptr;
  check(cudaMalloc(&p, n * sizeof(T)), "cudaMalloc");
  check(cudaMemset(p, 0, n * sizeof(T)), "cudaMemset");
  return static_cast<T*>(p);
}

// Median seconds per call of fn over `reps` timed calls, after two warm-up calls.
double time_calls(int reps, const std::function<void()>& fn) {
  fn();
  fn();
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "event");
  check(cudaEventCreate(&stop), "event");
  std::vector<double> times;
  const auto stream = static_cast<cudaStream_t>(kn::cuda::current_stream());
  for (int i = 0; i < reps; ++i) {
    check(cudaEventRecord(start, stream), "record");
    fn();
    check(cudaEventRecord(stop, stream), "record");
    check(cudaEventSynchronize(stop), "sync");
    float ms = 0.0f;
    check(cudaEventElapsedTime(&ms, start, stop), "elapsed");
    times.push_back(ms * 1e-3);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

void report(const char* name, double value, const char* unit, double reference) {
  std::printf("BENCH|%s|%.3f|%s|%.3f|%.3f\n", name, value, unit, reference,
              reference > 0 ? value / reference : 0.0);
}


// Device-to-device copy of 1 GiB, counted as read + write: the bandwidth ceiling the other
// rows are fractions of.
double bench_copy() {
  const size_t copy_bytes = size_t{1} << 30;
  char* src = device_alloc<char>(copy_bytes);
  char* dst = device_alloc<char>(copy_bytes);
  const double copy_s = time_calls(10, [&] {
    check(cudaMemcpyAsync(dst, src, copy_bytes, cudaMemcpyDeviceToDevice,
                          static_cast<cudaStream_t>(kn::cuda::current_stream())),
          "copy");
  });
  const double copy_gbs = 2.0 * static_cast<double>(copy_bytes) / copy_s / 1e9;
  report("device copy", copy_gbs, "GB/s", copy_gbs);
  cudaFree(src);
  cudaFree(dst);
  return copy_gbs;
}

// RMSNorm: 8192 rows of 8192 floats, read once and written once.
void bench_rmsnorm(double copy_gbs) {
  const int64_t m = 8192, n = 8192;
  float* x = device_alloc<float>(static_cast<size_t>(m * n));
  float* out = device_alloc<float>(static_cast<size_t>(m * n));
  float* w = device_alloc<float>(static_cast<size_t>(n));
  const double s = time_calls(20, [&] {
    kn::cuda_backend().rmsnorm({.x = x, .ldx = n, .weight = w, .out = out, .ldo = n, .m = m,
                                .n = n});
  });
  report("rmsnorm 8192x8192", 2.0 * static_cast<double>(m * n) * 4 / s / 1e9, "GB/s", copy_gbs);
  cudaFree(x);
  cudaFree(out);
  cudaFree(w);
}

// Decode attention, 64 sequences with Llama-3-8B heads and block 16, planned and uploaded
// once as a step does; each timed call is one layer's run.
void bench_decode_attention(int context, double copy_gbs) {
  const int seqs = 64, hq = 32, hk = 8, hd = 128, bs = 16;
  const int blocks_per_seq = context / bs;
  const size_t cache = static_cast<size_t>(seqs) * blocks_per_seq * hk * bs * hd;
  float* k = device_alloc<float>(cache);
  float* v = device_alloc<float>(cache);
  float* q = device_alloc<float>(static_cast<size_t>(seqs) * hq * hd);
  float* out = device_alloc<float>(static_cast<size_t>(seqs) * hq * hd);
  std::vector<int32_t> table(static_cast<size_t>(seqs) * blocks_per_seq);
  std::iota(table.begin(), table.end(), 0);
  int32_t* dtable = device_alloc<int32_t>(table.size());
  check(cudaMemcpy(dtable, table.data(), table.size() * 4, cudaMemcpyHostToDevice), "copy");
  std::vector<kn::AttentionSequence> host_seqs;
  for (int s = 0; s < seqs; ++s) {
    host_seqs.push_back({.query_start = s, .num_queries = 1, .context_len = context,
                         .block_table = dtable + static_cast<size_t>(s) * blocks_per_seq});
  }
  kn::AttentionPlan plan;
  kn::cuda_backend().plan_attention({.decode_seqs = host_seqs.data(), .num_decode_seqs = seqs,
                                     .num_q_heads = hq, .num_kv_heads = hk, .head_dim = hd,
                                     .block_size = bs},
                                    plan);
  auto* metadata = device_alloc<unsigned char>(plan.metadata.size());
  check(cudaMemcpy(metadata, plan.metadata.data(), plan.metadata.size(), cudaMemcpyHostToDevice),
        "copy");
  kn::bind_attention_plan(plan, metadata);
  auto* workspace = device_alloc<unsigned char>(static_cast<size_t>(plan.workspace_bytes));
  const kn::PagedAttentionParams p{.q = q, .q_stride = hq * hd, .k_cache = k, .v_cache = v,
                                   .out = out, .out_stride = hq * hd, .plan = &plan,
                                   .workspace = workspace, .num_q_heads = hq,
                                   .num_kv_heads = hk, .head_dim = hd, .block_size = bs,
                                   .scale = 0.088f};
  const double s = time_calls(20, [&] { kn::cuda_backend().decode_attention(p); });
  char name[64];
  std::snprintf(name, sizeof name, "decode attn 64x%d", context);
  report(name, 2.0 * static_cast<double>(cache) * 4 / s / 1e9, "GB/s", copy_gbs);
  cudaFree(k);
  cudaFree(v);
  cudaFree(q);
  cudaFree(out);
  cudaFree(dtable);
  cudaFree(metadata);
  cudaFree(workspace);
}

// GEMM 8192³: strata's bf16/fp16/fp32 paths (fp32 activations in, fp32 out) against cuBLAS's
// own bf16 GEMM.
void bench_gemm() {
  const int64_t m = 8192, n = 8192, kk = 8192;
  float* x = device_alloc<float>(static_cast<size_t>(m * kk));
  uint16_t* w = device_alloc<uint16_t>(static_cast<size_t>(n * kk));
  uint16_t* x16 = device_alloc<uint16_t>(static_cast<size_t>(m * kk));
  uint16_t* y16 = device_alloc<uint16_t>(static_cast<size_t>(m * n));
  float* y = device_alloc<float>(static_cast<size_t>(m * n));
  const double flops = 2.0 * static_cast<double>(m) * n * kk;
  cublasHandle_t handle;
  cublasCreate(&handle);
  const float alpha = 1.0f, beta = 0.0f;
  const double peak_s = time_calls(10, [&] {
    cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, n, m, kk, &alpha, w, CUDA_R_16BF, kk, x16,
                 CUDA_R_16BF, kk, &beta, y16, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F,
                 CUBLAS_GEMM_DEFAULT);
  });
  const double peak = flops / peak_s / 1e12;
  report("cuBLAS bf16 GEMM 8192^3", peak, "TFLOP/s", peak);
  for (auto [dtype, name] : {std::pair{strata::DType::kBF16, "strata bf16 GEMM 8192^3"},
                             std::pair{strata::DType::kF16, "strata fp16 GEMM 8192^3"},
                             std::pair{strata::DType::kF32, "strata fp32 GEMM 8192^3"}}) {
    void* weights = w;
    float* w32 = nullptr;
    if (dtype == strata::DType::kF32) weights = w32 = device_alloc<float>(static_cast<size_t>(n * kk));
    const int64_t work_bytes = kn::cuda_backend().gemm_workspace_bytes(dtype, m, kk);
    unsigned char* work = work_bytes > 0 ? device_alloc<unsigned char>(static_cast<size_t>(work_bytes)) : nullptr;
    const kn::GemmParams p{.x = x, .ldx = kk, .w = weights, .w_dtype = dtype, .y = y, .ldy = n,
                           .m = m, .n = n, .k = kk, .workspace = work};
    const double s = time_calls(5, [&] { kn::cuda_backend().gemm(p); });
    report(name, flops / s / 1e12, "TFLOP/s", peak);
    if (w32 != nullptr) cudaFree(w32);
    if (work != nullptr) cudaFree(work);
  }
  cublasDestroy(handle);
  cudaFree(x);
  cudaFree(w);
  cudaFree(x16);
  cudaFree(y16);
  cudaFree(y);
}

}  // namespace

int main() {
  if (kn::cuda::device_count() == 0) {
    std::printf("bench_gpu_kernels: no CUDA device; nothing to measure\n");
    return 0;
  }
  std::printf("device: %s\n", kn::cuda::device_description(0).c_str());
  const double copy_gbs = bench_copy();
  bench_rmsnorm(copy_gbs);
  for (int context : {1024, 8192}) bench_decode_attention(context, copy_gbs);
  bench_gemm();
  return 0;
}
