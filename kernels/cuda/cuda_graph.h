// DecodeGraphs: CUDA graphs of the decode step, one per batch-size bucket
// (plan/graph_buckets.h), captured once and replayed every step. A decode step launches
// dozens of small kernels per layer; replaying a graph costs one launch.
//
// The step function must read everything that changes between steps from fixed device
// buffers that the caller refills before replay (token ids, positions, slot mapping,
// sequences, block tables, sampling params), and must use only graph-safe entry points:
// no host → device copies from pageable memory, so decode attention runs on a plan whose
// sequences are already on the device (AttentionPlanParams::device_decode_seqs) and a
// workspace the caller sized before capturing. Other workspaces are sized by an eager
// warm-up run of each bucket before its capture.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "common/status.h"

namespace strata::kernels::cuda {

class DecodeGraphs {
 public:
  explicit DecodeGraphs(std::vector<int> buckets);
  ~DecodeGraphs();
  DecodeGraphs(const DecodeGraphs&) = delete;
  DecodeGraphs& operator=(const DecodeGraphs&) = delete;

  // For each bucket, largest first: step(bucket) once eagerly, then captured on stream().
  Status capture(const std::function<void(int bucket)>& step);
  // Replays the smallest captured bucket >= batch on stream() and returns it; nullopt when
  // the batch is past the largest bucket or nothing is captured (run the step eagerly).
  std::optional<int> replay(int batch);

  const std::vector<int>& buckets() const { return buckets_; }
  void* stream() const { return stream_; }  // cudaStream_t
  bool captured() const { return !execs_.empty(); }

 private:
  std::vector<int> buckets_;
  std::vector<void*> execs_;  // cudaGraphExec_t per bucket, same order as buckets_
  void* stream_ = nullptr;
};

}  // namespace strata::kernels::cuda
