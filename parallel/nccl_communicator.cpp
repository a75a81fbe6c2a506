#include "parallel/nccl_communicator.h"

#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "common/check.h"
#include "kernels/cuda/cuda_backend.h"
#include "parallel/mpi_communicator.h"

namespace strata {
namespace {

constexpr int kNcclFailureExitCode = 3;

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(ncclComm_t comm, int rank, int size, int watchdog_interval_ms)
      : comm_(comm), rank_(rank), size_(size) {
    watchdog_ = std::thread([this, watchdog_interval_ms] { watch(watchdog_interval_ms); });
  }
  ~NcclCommunicator() override {
    stop_ = true;
    watchdog_.join();
    ncclCommDestroy(comm_);
  }
  int rank() const override { return rank_; }
  int world_size() const override { return size_; }

  void all_reduce_sum(float* data, size_t count) override {
    check(ncclAllReduce(data, data, count, ncclFloat, ncclSum, comm_, stream()));
    wait();
  }
  void all_gather(const float* in, size_t count, float* out) override {
    check(ncclAllGather(in, out, count, ncclFloat, comm_, stream()));
    wait();
  }
  void broadcast(void* data, size_t bytes, int root) override {
    check(ncclBroadcast(data, data, bytes, ncclChar, root, comm_, stream()));
    wait();
  }
  void send(const void* data, size_t bytes, int dest) override {
    check(ncclSend(data, bytes, ncclChar, dest, comm_, stream()));
    wait();
  }
  void recv(void* data, size_t bytes, int src) override {
    check(ncclRecv(data, bytes, ncclChar, src, comm_, stream()));
    wait();
  }

 private:
  static cudaStream_t stream() {
    return static_cast<cudaStream_t>(kernels::cuda::current_stream());
  }
  void check(ncclResult_t result) {
    if (result == ncclSuccess) return;
    fail("enqueueing a collective", result);
  }
  // Waits for the stream; if the watchdog aborted the communicator meanwhile, the group is
  // already on its way out.
  void wait() {
    const cudaError_t err = cudaStreamSynchronize(stream());
    if (err != cudaSuccess) {
      std::fprintf(stderr, "strata: NCCL rank %d: waiting for a collective: %s\n", rank_,
                   cudaGetErrorString(err));
      mpi_abort_group(kNcclFailureExitCode);
    }
  }
  [[noreturn]] void fail(const char* what, ncclResult_t result) {
    std::fprintf(stderr, "strata: NCCL rank %d: %s failed: %s (%s); ending the worker group\n",
                 rank_, what, ncclGetErrorString(result), ncclGetLastError(comm_));
    mpi_abort_group(kNcclFailureExitCode);
  }
  void watch(int interval_ms) {
    while (!stop_) {
      ncclResult_t async = ncclSuccess;
      const ncclResult_t polled = ncclCommGetAsyncError(comm_, &async);
      if (polled != ncclSuccess || (async != ncclSuccess && async != ncclInProgress)) {
        ncclCommAbort(comm_);  // releases this rank's stuck collectives
        fail("asynchronous NCCL operation", polled != ncclSuccess ? polled : async);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
    }
  }

  ncclComm_t comm_;
  int rank_, size_;
  std::atomic<bool> stop_{false};
  std::thread watchdog_;
};

StatusOr<std::unique_ptr<Communicator>> make_over(MPI_Comm mpi_comm, const NcclOptions& options) {
  if (!mpi_is_initialized()) {
    return Status(StatusCode::kInternal, "NCCL communicator: MPI is not initialized");
  }
  if (kernels::cuda::device_count() <= options.device) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("NCCL communicator: CUDA device {} requested, {} visible",
                              options.device, kernels::cuda::device_count()));
  }
  int rank = 0, size = 1;
  MPI_Comm_rank(mpi_comm, &rank);
  MPI_Comm_size(mpi_comm, &size);
  ncclUniqueId id{};
  if (rank == 0 && ncclGetUniqueId(&id) != ncclSuccess) {
    // The others are about to wait in MPI_Bcast: end them all.
    std::fprintf(stderr, "strata: ncclGetUniqueId failed; ending the worker group\n");
    mpi_abort_group(kNcclFailureExitCode);
  }
  MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, mpi_comm);
  if (cudaSetDevice(options.device) != cudaSuccess) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("cudaSetDevice({}) failed", options.device));
  }
  ncclComm_t comm = nullptr;
  const ncclResult_t result = ncclCommInitRank(&comm, size, id, rank);
  if (result != ncclSuccess) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("ncclCommInitRank (rank {} of {}) failed: {}", rank, size,
                              ncclGetErrorString(result)));
  }
  return std::unique_ptr<Communicator>(
      new NcclCommunicator(comm, rank, size, options.watchdog_interval_ms));
}

}  // namespace

StatusOr<std::unique_ptr<Communicator>> make_nccl_world_communicator(const NcclOptions& options) {
  return make_over(MPI_COMM_WORLD, options);
}

StatusOr<std::unique_ptr<Communicator>> make_nccl_tp_communicator(const Topology& topology,
                                                                  const NcclOptions& options) {
  MPI_Comm comm;
  MPI_Comm_split(MPI_COMM_WORLD, topology.pp_stage(), topology.tp_rank(), &comm);
  auto result = make_over(comm, options);
  MPI_Comm_free(&comm);  // NCCL keeps its own communicator; the MPI one was only for the id
  return result;
}

}  // namespace strata
