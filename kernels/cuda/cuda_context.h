// Per-thread CUDA state of the backend: the stream and the cuBLAS handle with its
// workspace. Ops keep no scratch here: their plans, metadata and workspaces belong to the
// caller (kernels/ops.h). Internal to kernels/cuda.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace strata::kernels::cuda {

// A failed CUDA call is a broken device or a bug: report what, where, and abort (the
// group's other ranks are ended by the NCCL watchdog or MPI).
[[noreturn]] void cuda_fail(const char* what, const char* detail, const char* file, int line);

#define STRATA_CUDA_CHECK(expr)                                                                \
  do {                                                                                         \
    const cudaError_t strata_err_ = (expr);                                                    \
    if (strata_err_ != cudaSuccess)                                                            \
      ::strata::kernels::cuda::cuda_fail(#expr, cudaGetErrorString(strata_err_), __FILE__,     \
                                         __LINE__);                                            \
  } while (0)

#define STRATA_CUBLAS_CHECK(expr)                                                              \
  do {                                                                                         \
    const cublasStatus_t strata_st_ = (expr);                                                  \
    if (strata_st_ != CUBLAS_STATUS_SUCCESS)                                                   \
      ::strata::kernels::cuda::cuda_fail(#expr, cublasGetStatusString(strata_st_), __FILE__,   \
                                         __LINE__);                                            \
  } while (0)

// Checks the last kernel launch (configuration errors surface here, not at the next sync).
#define STRATA_CUDA_CHECK_LAUNCH() STRATA_CUDA_CHECK(cudaGetLastError())

struct CudaContext {
  CudaContext();   // handles and the cuBLAS workspace on the current device
  ~CudaContext();  // unchecked: may run at thread exit, after the driver shut down
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;

  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  void* cublas_workspace = nullptr;  // kCublasWorkspaceBytes
};

// This thread's context, created on first use (handles bound to the current device).
CudaContext& context();

inline unsigned grid_dim(int64_t blocks) { return static_cast<unsigned>(blocks); }

}  // namespace strata::kernels::cuda
