#include "parallel/mpi_communicator.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "common/check.h"

namespace strata {
namespace {

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm comm, bool owned) : comm_(comm), owned_(owned) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owned_ && !finalized) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int world_size() const override { return size_; }

  void all_reduce_sum(float* data, size_t count) override {
    if (size_ == 1) return;
    check(MPI_Allreduce(MPI_IN_PLACE, data, as_int(count), MPI_FLOAT, MPI_SUM, comm_));
  }
  void all_gather(const float* in, size_t count, float* out) override {
    if (size_ == 1) {
      if (in != out) std::memmove(out, in, count * sizeof(float));
      return;
    }
    check(MPI_Allgather(in, as_int(count), MPI_FLOAT, out, as_int(count), MPI_FLOAT, comm_));
  }
  // The plan broadcast is where an idle group's followers wait for the next request, maybe
  // for hours. MPI_Bcast busy-polls there (a core per rank at 100%), so this polls a
  // non-blocking broadcast instead: spinning for the first 2 ms (while the group is busy the
  // next plan comes sooner: the driver only samples and schedules between steps), then
  // sleeping between polls, backing off to 1 ms.
  void broadcast(void* data, size_t bytes, int root) override {
    if (size_ == 1) return;
    MPI_Request request;
    check(MPI_Ibcast(data, as_int(bytes), MPI_BYTE, root, comm_, &request));
    const auto start = std::chrono::steady_clock::now();
    auto pause = std::chrono::microseconds(20);
    for (int done = 0;;) {
      check(MPI_Test(&request, &done, MPI_STATUS_IGNORE));
      if (done) return;
      if (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(2)) continue;
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(1000));
    }
  }
  void send(const void* data, size_t bytes, int dest) override {
    check(MPI_Send(data, as_int(bytes), MPI_BYTE, dest, 0, comm_));
  }
  void recv(void* data, size_t bytes, int src) override {
    check(MPI_Recv(data, as_int(bytes), MPI_BYTE, src, 0, comm_, MPI_STATUS_IGNORE));
  }

 private:
  static int as_int(size_t n) {
    STRATA_CHECK(n <= static_cast<size_t>(INT_MAX));
    return static_cast<int>(n);
  }
  // MPI's default handler aborts the whole job on error, which is what a group wants.
  static void check(int code) { STRATA_CHECK(code == MPI_SUCCESS); }

  MPI_Comm comm_;
  bool owned_;
  int rank_ = 0, size_ = 1;
};

}  // namespace

Status mpi_initialize(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return ok_status();
  int provided = 0;
  if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    return Status(StatusCode::kUnavailable, "MPI_Init_thread failed; is Open MPI installed and is the "
                                            "process started by mpirun?");
  }
  return ok_status();
}

void mpi_finalize() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Finalize();
}

bool mpi_is_initialized() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  return initialized != 0;
}

int mpi_world_rank() {
  if (!mpi_is_initialized()) return 0;
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int mpi_world_size() {
  if (!mpi_is_initialized()) return 1;
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

int mpi_local_rank() {
  if (!mpi_is_initialized()) return 0;
  MPI_Comm host;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, mpi_world_rank(), MPI_INFO_NULL, &host);
  int rank = 0;
  MPI_Comm_rank(host, &rank);
  MPI_Comm_free(&host);
  return rank;
}

void mpi_abort_group(int exit_code) {
  if (mpi_is_initialized()) MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);
}

std::unique_ptr<Communicator> make_mpi_world_communicator() {
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, false);
}

std::unique_ptr<Communicator> make_mpi_tp_communicator(const Topology& topology) {
  MPI_Comm comm;
  MPI_Comm_split(MPI_COMM_WORLD, topology.pp_stage(), topology.tp_rank(), &comm);
  return std::make_unique<MpiCommunicator>(comm, true);
}

}  // namespace strata
