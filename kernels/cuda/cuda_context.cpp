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

DeviceWorkspace::~DeviceWorkspace() {
  if (data_ != nullptr) cudaFree(data_);  // no check: may run after the driver shut down
}

void* DeviceWorkspace::get(int64_t bytes, cudaStream_t stream) {
  if (bytes <= bytes_) return data_;
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  STRATA_CUDA_CHECK(cudaStreamIsCapturing(stream, &capturing));
  if (capturing != cudaStreamCaptureStatusNone) {
    cuda_fail("DeviceWorkspace::get",
              fmt::format("workspace must grow from {} to {} bytes during a CUDA graph capture; "
                          "call reserve_workspace() before capturing",
                          bytes_, bytes)
                  .c_str(),
              __FILE__, __LINE__);
  }
  // Kernels still in flight may read the old buffer.
  STRATA_CUDA_CHECK(cudaStreamSynchronize(stream));
  if (data_ != nullptr) STRATA_CUDA_CHECK(cudaFree(data_));
  const int64_t rounded = align_up(bytes + bytes / 4, 1 << 20);  // grow by >= 25%
  STRATA_CUDA_CHECK(cudaMalloc(&data_, static_cast<size_t>(rounded)));
  bytes_ = rounded;
  return data_;
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

void reserve_workspace(int64_t scratch_bytes) {
  CudaContext& ctx = context();
  ctx.scratch.get(scratch_bytes, ctx.stream);
}

}  // namespace strata::kernels::cuda
