// The device runtime: what the engine needs of a device beyond the kernel table — naming
// and readying it, its memory use, the CUDA kernels' scratch sizing, and CUDA graphs of the
// decode step. Behind it is a registry keyed by DeviceType: the CPU's entry is always there;
// the CUDA backend (kernels/cuda/cuda_runtime.cpp) adds its own when strata is built with
// STRATA_CUDA. Code above kernels/ asks the registry and never checks how strata was built:
// a build without CUDA answers every CUDA request with an error that names the flag and how
// to rebuild, and a CUDA build on a machine without a GPU fails cleanly too, never crashes.
//
// These functions sit in namespace strata, next to Device, because the engine names them
// unqualified, as it names Device.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "kernels/dtype.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"

namespace strata {

struct DeviceMemoryUse {
  int64_t total_bytes = 0;   // the device's memory
  int64_t in_use_bytes = 0;  // tensors allocated on it so far (weights, caches, workspaces)
};

// One backend's graphs of a padded decode step; see DecodeGraphRunner for the contract.
class DecodeGraphImpl {
 public:
  virtual ~DecodeGraphImpl() = default;
  virtual Status capture(const std::function<void(int bucket)>& step) = 0;
  virtual bool captured() const = 0;
  virtual void bind() const = 0;
  virtual bool replay(int bucket) = 0;
};

// One device type's entry in the registry. Every function takes the device index.
struct DeviceRuntime {
  const kernels::KernelBackend* backend = nullptr;
  int (*device_count)() = nullptr;  // devices visible to this process; 0 without a driver
  // Selects the device for the calling thread and caps its allocator at the fraction.
  Status (*init)(int index, double gpu_memory_fraction) = nullptr;
  DeviceMemoryUse (*memory_use)(int index) = nullptr;
  // nullptr: the device has no graphs and every step runs eagerly.
  std::unique_ptr<DecodeGraphImpl> (*make_decode_graphs)(std::vector<int> buckets) = nullptr;
};

// Adds or replaces `type`'s entry. The built-in entries are registered before the first
// lookup, by an explicit call (not a static initializer the linker could drop).
void register_device_runtime(DeviceType type, const DeviceRuntime& runtime);
// nullptr when this build has no backend for `type`.
const DeviceRuntime* find_device_runtime(DeviceType type);

// Devices of `type` this process can use: 0 when the build lacks the backend or the machine
// lacks the device; the CPU counts as one.
int device_count(DeviceType type);

// "cpu", "cuda" (device 0) or "cuda:N".
StatusOr<Device> parse_device(std::string_view name);

// Readies `device` for tensors and kernels. CPU: nothing. CUDA: checks that this build has
// the CUDA backend and that the GPU exists, selects it for the calling thread (run every
// step on that thread) and caps the allocator at gpu_memory_fraction of its memory. Safe
// to call again (the budget follows the latest fraction).
Status init_device(Device device, double gpu_memory_fraction);

// The kernel table whose ops take `device`'s pointers. Precondition: init_device succeeded.
const kernels::KernelBackend& backend_for(Device device);

// Zeros for the CPU.
DeviceMemoryUse device_memory_use(Device device);

// What a model's step may ask of the CUDA kernels besides its activations, for the memory
// plan.
struct KernelReserveRequest {
  DType weight_dtype = DType::kF32;
  int64_t max_tokens = 0;  // tokens of the largest step
  int64_t max_gemm_k = 0;  // widest GEMM input (hidden, q_size or intermediate)
  int64_t max_gemm_n = 0;  // widest GEMM output of a quantized matrix (2 · intermediate)
  bool int8_gemms = false, int4_gemms = false;  // W8A8 / W4A16 matrices among them
  int max_seqs = 0;        // sequences of the largest step
  int max_context_len = 0;
  int num_q_heads = 0, num_kv_heads = 0, head_dim = 0;
};
// Largest scratch any one GEMM of such a step uses (converted activations, the W8A8 int32
// products, the W4A16 dequantized slices).
int64_t kernel_scratch_bytes(const KernelReserveRequest& r);
// The largest decode attention workspace of such a step (the partial softmaxes), which
// the model owns and hands to every layer's attention.
int64_t attention_workspace_bytes(const KernelReserveRequest& r);
// Device memory the CUDA runtime and the kernels take besides the model's activations:
// cuBLAS workspace, the GEMM and attention workspaces (the model holds them, the kernels
// size them), and an allowance for the CUDA context's own allocations and captured graphs.
int64_t kernel_reserve_bytes(const KernelReserveRequest& r);

// CUDA graphs of one model's padded decode step (worker/model/step_inputs.h), one per bucket,
// replayed on one stream. Without CUDA it captures nothing, and every step runs eagerly.
class DecodeGraphRunner {
 public:
  explicit DecodeGraphRunner(std::vector<int> buckets);  // not copyable: it owns the graphs
  ~DecodeGraphRunner();

  // For each bucket runs step(bucket) once eagerly and captures it. step must read its
  // inputs from fixed device buffers and use workspaces that do not move (a captured graph
  // keeps their addresses).
  Status capture(const std::function<void(int bucket)>& step);
  bool captured() const;
  // Once captured, makes the graphs' stream this thread's launch stream, so the step's
  // input upload, the replay and the logits copy are ordered on one stream.
  void bind() const;
  // Replays `bucket`'s graph on the bound stream; false when it has none.
  bool replay(int bucket);

 private:
  std::unique_ptr<DecodeGraphImpl> impl_;  // null: no graphs in this build
};

}  // namespace strata
