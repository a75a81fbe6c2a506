#include "kernels/device.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <mutex>
#include <optional>

#include "common/check.h"
#include "kernels/cuda/plan/gemm_w4a16_plan.h"
#include "kernels/cuda/plan/launch_plan.h"
#include "kernels/cuda/plan/w8a8_plan.h"

#if STRATA_HAVE_CUDA
#include "kernels/cuda/cuda_runtime.h"
#endif

namespace strata {
namespace {

constexpr size_t kNumDeviceTypes = 2;  // DeviceType::kCpu, kCuda

DeviceRuntime cpu_runtime() {
  return {.backend = &kernels::cpu_backend(),
          .device_count = [] { return 1; },
          .init = [](int, double) { return ok_status(); },
          .memory_use = [](int) { return DeviceMemoryUse{}; }};
}

struct Registry {
  std::mutex mu;
  std::array<std::optional<DeviceRuntime>, kNumDeviceTypes> entries;
};

// The table, with the built-in entries in it before anyone can read it. The CUDA backend
// is registered by a direct call, so the linker keeps it whenever this file is linked.
Registry& registry() {
  static Registry* r = [] {
    auto* created = new Registry;  // never destroyed: lookups may run during static teardown
    created->entries[static_cast<size_t>(DeviceType::kCpu)] = cpu_runtime();
#if STRATA_HAVE_CUDA
    created->entries[static_cast<size_t>(DeviceType::kCuda)] = kernels::cuda::cuda_runtime();
#endif
    return created;
  }();
  return *r;
}

}  // namespace

void register_device_runtime(DeviceType type, const DeviceRuntime& runtime) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  r.entries.at(static_cast<size_t>(type)) = runtime;
}

const DeviceRuntime* find_device_runtime(DeviceType type) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  const std::optional<DeviceRuntime>& entry = r.entries.at(static_cast<size_t>(type));
  return entry ? &*entry : nullptr;
}

int device_count(DeviceType type) {
  const DeviceRuntime* runtime = find_device_runtime(type);
  return runtime ? runtime->device_count() : 0;
}

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
  const DeviceRuntime* runtime = find_device_runtime(device.type);
  if (runtime == nullptr) {
    return unimplemented("--device {}: this strata was built without CUDA; rebuild with "
                         "-DSTRATA_CUDA=ON (needs nvcc and the CUDA toolkit), or use --device cpu",
                         device.to_string());
  }
  const int count = runtime->device_count();
  if (count == 0) return Status(StatusCode::kUnavailable, "no CUDA device found; use --device cpu");
  if (device.index >= count) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("--device {} names a GPU that is not visible: {} found "
                              "(CUDA_VISIBLE_DEVICES?); use --device cuda:0..{}",
                              device.to_string(), count, count - 1));
  }
  return runtime->init(device.index, gpu_memory_fraction);
}

const kernels::KernelBackend& backend_for(Device device) {
  const DeviceRuntime* runtime = find_device_runtime(device.type);
  STRATA_CHECK(runtime != nullptr && runtime->backend != nullptr);
  return *runtime->backend;
}

DeviceMemoryUse device_memory_use(Device device) {
  const DeviceRuntime* runtime = find_device_runtime(device.type);
  return runtime ? runtime->memory_use(device.index) : DeviceMemoryUse{};
}

int64_t kernel_scratch_bytes(const KernelReserveRequest& r) {
  int64_t bytes = kernels::cuda::gemm_scratch_bytes(r.weight_dtype, r.max_tokens, r.max_gemm_k);
  if (r.int8_gemms) {
    bytes = std::max(bytes, kernels::cuda::w8a8_workspace_bytes(r.max_tokens, r.max_gemm_n,
                                                                r.max_gemm_k, 0));
  }
  if (r.int4_gemms) {
    bytes = std::max(bytes, kernels::cuda::gemm_w4a16_workspace_bytes(r.max_tokens, r.max_gemm_k));
  }
  return bytes;
}

int64_t attention_workspace_bytes(const KernelReserveRequest& r) {
  if (r.max_seqs <= 0 || r.num_q_heads <= 0 || r.num_kv_heads <= 0 || r.head_dim <= 0) return 0;
  return kernels::cuda::plan_decode(r.max_seqs, r.num_q_heads, r.num_kv_heads, r.head_dim,
                                    r.max_context_len)
      .workspace_bytes;
}

int64_t kernel_reserve_bytes(const KernelReserveRequest& r) {
  const int64_t scratch = kernels::cuda::align_up(kernel_scratch_bytes(r), 1 << 20);
  constexpr int64_t kGraphsAndContext = int64_t{64} << 20;
  return kernels::cuda::kCublasWorkspaceBytes + scratch + attention_workspace_bytes(r) +
         kGraphsAndContext;
}

DecodeGraphRunner::DecodeGraphRunner(std::vector<int> buckets) {
  const DeviceRuntime* runtime = find_device_runtime(DeviceType::kCuda);
  if (runtime != nullptr && runtime->make_decode_graphs != nullptr) {
    impl_ = runtime->make_decode_graphs(std::move(buckets));
  }
}

DecodeGraphRunner::~DecodeGraphRunner() = default;

Status DecodeGraphRunner::capture(const std::function<void(int bucket)>& step) {
  if (!impl_) return unimplemented("CUDA graphs need a build with -DSTRATA_CUDA=ON");
  return impl_->capture(step);
}

bool DecodeGraphRunner::captured() const { return impl_ && impl_->captured(); }

void DecodeGraphRunner::bind() const {
  if (impl_) impl_->bind();
}

bool DecodeGraphRunner::replay(int bucket) { return impl_ && impl_->replay(bucket); }

}  // namespace strata
