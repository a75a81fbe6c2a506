#include "kernels/cuda/cuda_graph.h"

#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/plan/graph_buckets.h"

namespace strata::kernels::cuda {
namespace {

// Sets this thread's launch stream for a scope.
class StreamScope {
 public:
  explicit StreamScope(void* stream) : previous_(current_stream()) { set_stream(stream); }
  ~StreamScope() { set_stream(previous_); }
  StreamScope(const StreamScope&) = delete;
  StreamScope& operator=(const StreamScope&) = delete;

 private:
  void* previous_;
};

}  // namespace

DecodeGraphs::DecodeGraphs(std::vector<int> buckets) : buckets_(std::move(buckets)) {
  std::sort(buckets_.begin(), buckets_.end());
  buckets_.erase(std::unique(buckets_.begin(), buckets_.end()), buckets_.end());
}

DecodeGraphs::~DecodeGraphs() {
  for (void* exec : execs_) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec));
  if (stream_ != nullptr) cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
}

Status DecodeGraphs::capture(const std::function<void(int bucket)>& step) {
  if (device_count() == 0) {
    return Status(StatusCode::kUnavailable, "CUDA graphs need a GPU; none is visible");
  }
  if (stream_ == nullptr) {
    cudaStream_t s = nullptr;
    STRATA_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    stream_ = s;
  }
  for (void* exec : execs_) STRATA_CUDA_CHECK(cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec)));
  execs_.assign(buckets_.size(), nullptr);
  const auto stream = static_cast<cudaStream_t>(stream_);
  StreamScope scope(stream_);
  // Largest first: its warm-up grows the workspaces to what every smaller bucket needs.
  for (size_t i = buckets_.size(); i-- > 0;) {
    step(buckets_[i]);
    STRATA_CUDA_CHECK(cudaStreamSynchronize(stream));
    cudaGraph_t graph = nullptr;
    STRATA_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    step(buckets_[i]);
    STRATA_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    if (err != cudaSuccess) {
      cudaGetLastError();
      return internal_error("instantiating the decode graph of batch {} failed: {}", buckets_[i],
                            cudaGetErrorString(err));
    }
    execs_[i] = exec;
  }
  return ok_status();
}

std::optional<int> DecodeGraphs::replay(int batch) {
  if (!captured()) return std::nullopt;
  const std::optional<int> bucket = graph_bucket_for(buckets_, batch);
  if (!bucket) return std::nullopt;
  const auto i = static_cast<size_t>(
      std::lower_bound(buckets_.begin(), buckets_.end(), *bucket) - buckets_.begin());
  STRATA_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(execs_[i]),
                                    static_cast<cudaStream_t>(stream_)));
  return bucket;
}

}  // namespace strata::kernels::cuda
