// The device runtime: what the engine needs of its device beyond the kernel table —
// naming and setting up the device, its memory budget, and CUDA graphs of the decode step.
// The CPU needs none of it. This is the one place above kernels/ that knows whether strata
// was built with CUDA (STRATA_HAVE_CUDA): a build without it answers every CUDA request
// with an error that names the flag and how to rebuild, and a CUDA build on a machine
// without a GPU fails cleanly too, never crashes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"
#include "worker/model_config.h"
#include "worker/shard_plan.h"

namespace strata {

// "cpu", "cuda" (device 0) or "cuda:N".
StatusOr<Device> parse_device(std::string_view name);

// Readies `device` for tensors and kernels. CPU: nothing. CUDA: checks that this build has
// the CUDA backend and that the GPU exists, selects it for the calling thread (run every
// step on that thread) and caps the allocator at gpu_memory_fraction of its memory. Safe
// to call again (the budget follows the latest fraction).
Status init_device(Device device, double gpu_memory_fraction);

// The kernel table whose ops take `device`'s pointers. Precondition: init_device succeeded.
const kernels::KernelBackend& backend_for(Device device);

struct DeviceMemoryUse {
  int64_t total_bytes = 0;   // the device's memory
  int64_t in_use_bytes = 0;  // tensors allocated on it so far (weights, caches, workspaces)
};
// CUDA only (zeros for the CPU).
DeviceMemoryUse device_memory_use(Device device);

// What a model's step may ask of the CUDA kernels besides tensors, for the memory plan and
// for sizing their scratch before graphs are captured.
struct KernelReserveRequest {
  DType weight_dtype = DType::kF32;
  int64_t max_tokens = 0;  // tokens of the largest step
  int64_t max_gemm_k = 0;  // widest GEMM input (hidden, q_size or intermediate)
  int max_seqs = 0;        // sequences of the largest step
  int max_context_len = 0;
  int num_q_heads = 0, num_kv_heads = 0, head_dim = 0;
};
// Largest scratch any one GEMM of such a step uses (converted activations, int32 sums).
int64_t kernel_scratch_bytes(const KernelReserveRequest& r);
// The largest decode attention workspace of such a step (the partial softmaxes), which
// the model owns and hands to every layer's attention.
int64_t attention_workspace_bytes(const KernelReserveRequest& r);
// Device memory the CUDA runtime and the kernels take outside the model's tensors: cuBLAS
// workspace, GEMM scratch, the attention workspace, and an allowance for the CUDA
// context's own allocations and captured graphs.
int64_t kernel_reserve_bytes(const KernelReserveRequest& r);

// CUDA graphs of one model's padded decode step (worker/step_inputs.h), one per bucket,
// replayed on one stream. Without CUDA it captures nothing, and every step runs eagerly.
class DecodeGraphRunner {
 public:
  explicit DecodeGraphRunner(std::vector<int> buckets);
  ~DecodeGraphRunner();
  DecodeGraphRunner(const DecodeGraphRunner&) = delete;
  DecodeGraphRunner& operator=(const DecodeGraphRunner&) = delete;

  // Grows the kernels' scratch to scratch_bytes (no kernel may grow it later: a captured
  // graph keeps the address), then for each bucket runs step(bucket) once eagerly and
  // captures it. step must read its inputs from fixed device buffers.
  Status capture(int64_t scratch_bytes, const std::function<void(int bucket)>& step);
  bool captured() const;
  // Once captured, makes the graphs' stream this thread's launch stream, so the step's
  // input upload, the replay and the logits copy are ordered on one stream.
  void bind() const;
  // Replays `bucket`'s graph on the bound stream; false when it has none.
  bool replay(int bucket);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata
