#include "kernels/cuda/cuda_runtime.h"

#include "common/check.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_graph.h"
#include "kernels/cuda/device_allocator.h"

namespace strata::kernels::cuda {
namespace {

class CudaDecodeGraphs final : public DecodeGraphImpl {
 public:
  explicit CudaDecodeGraphs(std::vector<int> buckets) : graphs_(std::move(buckets)) {}
  // The graphs' stream dies with them: later work on this thread goes back to the default.
  ~CudaDecodeGraphs() override {
    if (graphs_.captured() && current_stream() == graphs_.stream()) {
      synchronize();
      set_stream(nullptr);
    }
  }

  Status capture(const std::function<void(int bucket)>& step) override {
    return graphs_.capture(step);
  }
  bool captured() const override { return graphs_.captured(); }
  void bind() const override {
    if (!captured() || current_stream() == graphs_.stream()) return;
    set_stream(graphs_.stream());
  }
  bool replay(int bucket) override {
    const std::optional<int> replayed = graphs_.replay(bucket);
    STRATA_CHECK(!replayed || *replayed == bucket);
    return replayed.has_value();
  }

 private:
  DecodeGraphs graphs_;
};

}  // namespace

DeviceRuntime cuda_runtime() {
  return {.backend = &cuda_backend(),
          .device_count = &cuda::device_count,
          .init = &init_device_memory,
          .memory_use =
              [](int index) {
                const DeviceMemoryStats s = device_memory_stats(index);
                return DeviceMemoryUse{.total_bytes = s.total_bytes, .in_use_bytes = s.in_use_bytes};
              },
          .make_decode_graphs = [](std::vector<int> buckets) -> std::unique_ptr<DecodeGraphImpl> {
            return std::make_unique<CudaDecodeGraphs>(std::move(buckets));
          }};
}

}  // namespace strata::kernels::cuda
