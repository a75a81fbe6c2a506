#include "kernels/cuda/cuda_context.h"

#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/plan/launch_plan.h"

namespace strata::kernels::cuda {

void cuda_fail(const char* what, const char* detail, const char* file, int line) {
  std::fprintf(stderr, "strata: CUDA error at %s:%d: %s: %s\n", file, line, what, detail);
  std::abort();
}

CudaContext::CudaContext() {
  STRATA_CUBLAS_CHECK(cublasCreate(&cublas));
  STRATA_CUDA_CHECK(cudaMalloc(&cublas_workspace, kCublasWorkspaceBytes));
  STRATA_CUBLAS_CHECK(
      cublasSetWorkspace(cublas, cublas_workspace, static_cast<size_t>(kCublasWorkspaceBytes)));
  // Plain FP32 for fp32 GEMMs: TF32 would not match the CPU twin's tolerance.
  STRATA_CUBLAS_CHECK(cublasSetMathMode(cublas, CUBLAS_DEFAULT_MATH));
}

CudaContext::~CudaContext() {
  if (cublas != nullptr) cublasDestroy(cublas);
  if (cublas_workspace != nullptr) cudaFree(cublas_workspace);
}

CudaContext& context() {
  thread_local CudaContext ctx;
  return ctx;
}

}  // namespace strata::kernels::cuda

namespace strata::kernels::cuda {

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return count;
}

std::string device_description(int device) {
  if (device_count() <= device) return "";
  cudaDeviceProp prop{};
  STRATA_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  return fmt::format("{} (sm_{}{}, {} SMs, {:.1f} GiB)", prop.name, prop.major, prop.minor,
                     prop.multiProcessorCount,
                     static_cast<double>(prop.totalGlobalMem) / (1 << 30));
}

void set_stream(void* stream) {
  CudaContext& ctx = context();
  ctx.stream = static_cast<cudaStream_t>(stream);
  STRATA_CUBLAS_CHECK(cublasSetStream(ctx.cublas, ctx.stream));
  // cublasSetStream puts the handle back on cuBLAS's own workspace pool, which allocates
  // per stream (and per captured graph); keep ours. One workspace serves every stream
  // because this thread's streams take turns: switching happens between synchronized steps.
  STRATA_CUBLAS_CHECK(cublasSetWorkspace(ctx.cublas, ctx.cublas_workspace,
                                         static_cast<size_t>(kCublasWorkspaceBytes)));
}

void* current_stream() { return context().stream; }

void synchronize() { STRATA_CUDA_CHECK(cudaStreamSynchronize(context().stream)); }

}  // namespace strata::kernels::cuda
