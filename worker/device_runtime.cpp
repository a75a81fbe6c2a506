#include "worker/device_runtime.h"

#include <algorithm>
#include <charconv>

#include "common/check.h"
#include "kernels/cuda/plan/launch_plan.h"

#if STRATA_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_graph.h"
#include "kernels/cuda/device_allocator.h"
#endif

namespace strata {

StatusOr<Device> parse_device(std::string_view name) {
  if (name == "cpu") return Device{};
  if (name == "cuda") return Device{.type = DeviceType::kCuda, .index = 0};
  constexpr std::string_view kCuda = "cuda:";
  if (name.substr(0, kCuda.size()) == kCuda) {
    const std::string_view digits = name.substr(kCuda.size());
    int index = -1;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (ec == std::errc() && end == digits.data() + digits.size() && index >= 0) {
      return Device{.type = DeviceType::kCuda, .index = index};
    }
  }
  return invalid_argument("`device` (--device) must be cpu, cuda or cuda:N. Given: {}", name);
}

Status init_device(Device device, double gpu_memory_fraction) {
  if (device.is_cpu()) return ok_status();
#if STRATA_HAVE_CUDA
  const int count = kernels::cuda::device_count();
  if (count == 0) return Status(StatusCode::kUnavailable, "no CUDA device found; use --device cpu");
  if (device.index >= count) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("--device {} names a GPU that is not visible: {} found "
                              "(CUDA_VISIBLE_DEVICES?); use --device cuda:0..{}",
                              device.to_string(), count, count - 1));
  }
  return kernels::cuda::init_device_memory(device.index, gpu_memory_fraction);
#else
  (void)gpu_memory_fraction;
  return unimplemented("--device {}: this strata was built without CUDA; rebuild with "
                       "-DSTRATA_CUDA=ON (needs nvcc and the CUDA toolkit), or use --device cpu",
                       device.to_string());
#endif
}

const kernels::KernelBackend& backend_for(Device device) {
#if STRATA_HAVE_CUDA
  if (!device.is_cpu()) return kernels::cuda_backend();
#endif
  STRATA_CHECK(device.is_cpu());
  return kernels::cpu_backend();
}

DeviceMemoryUse device_memory_use(Device device) {
#if STRATA_HAVE_CUDA
  if (!device.is_cpu()) {
    const kernels::cuda::DeviceMemoryStats s = kernels::cuda::device_memory_stats(device.index);
    return {.total_bytes = s.total_bytes, .in_use_bytes = s.in_use_bytes};
  }
#endif
  (void)device;
  return {};
}

int64_t kernel_scratch_bytes(const KernelReserveRequest& r) {
  return kernels::cuda::gemm_scratch_bytes(r.weight_dtype, r.max_tokens, r.max_gemm_k);
}

int64_t attention_workspace_bytes(const KernelReserveRequest& r) {
  if (r.max_seqs <= 0 || r.num_q_heads <= 0 || r.num_kv_heads <= 0 || r.head_dim <= 0) return 0;
  return kernels::cuda::plan_decode(r.max_seqs, r.num_q_heads, r.num_kv_heads, r.head_dim,
                                    r.max_context_len)
      .workspace_bytes;
}

int64_t kernel_reserve_bytes(const KernelReserveRequest& r) {
  // The scratch grows by a quarter past what is asked, in whole MiB (cuda_context.cpp).
  const int64_t scratch = kernels::cuda::align_up(kernel_scratch_bytes(r) * 5 / 4, 1 << 20);
  constexpr int64_t kGraphsAndContext = int64_t{64} << 20;
  return kernels::cuda::kCublasWorkspaceBytes + scratch + attention_workspace_bytes(r) +
         kGraphsAndContext;
}

#if STRATA_HAVE_CUDA

struct DecodeGraphRunner::Impl {
  explicit Impl(std::vector<int> buckets) : graphs(std::move(buckets)) {}
  // The graphs' stream dies with them: later work on this thread goes back to the default.
  ~Impl() {
    if (graphs.captured() && kernels::cuda::current_stream() == graphs.stream()) {
      kernels::cuda::synchronize();
      kernels::cuda::set_stream(nullptr);
    }
  }
  kernels::cuda::DecodeGraphs graphs;
};

DecodeGraphRunner::DecodeGraphRunner(std::vector<int> buckets)
    : impl_(std::make_unique<Impl>(std::move(buckets))) {}

Status DecodeGraphRunner::capture(int64_t scratch_bytes,
                                  const std::function<void(int bucket)>& step) {
  kernels::cuda::reserve_workspace(scratch_bytes);
  return impl_->graphs.capture(step);
}

bool DecodeGraphRunner::captured() const { return impl_->graphs.captured(); }

void DecodeGraphRunner::bind() const {
  if (!captured() || kernels::cuda::current_stream() == impl_->graphs.stream()) return;
  kernels::cuda::set_stream(impl_->graphs.stream());
}

bool DecodeGraphRunner::replay(int bucket) {
  const std::optional<int> replayed = impl_->graphs.replay(bucket);
  STRATA_CHECK(!replayed || *replayed == bucket);
  return replayed.has_value();
}

#else

struct DecodeGraphRunner::Impl {};

DecodeGraphRunner::DecodeGraphRunner(std::vector<int>) : impl_(std::make_unique<Impl>()) {}

Status DecodeGraphRunner::capture(int64_t, const std::function<void(int)>&) {
  return unimplemented("CUDA graphs need a build with -DSTRATA_CUDA=ON");
}

bool DecodeGraphRunner::captured() const { return false; }
void DecodeGraphRunner::bind() const {}
bool DecodeGraphRunner::replay(int) { return false; }

#endif

DecodeGraphRunner::~DecodeGraphRunner() = default;

}  // namespace strata
