// The device allocator (budget from gpu_memory_fraction) and decode CUDA graphs (capture
// per bucket, replay). Skip without a GPU.
#include <new>
#include <vector>

#include "kernels/cuda/cuda_graph.h"
#include "kernels/cuda/device_allocator.h"
#include "kernels/cuda/plan/graph_buckets.h"
#include "kernels/tensor.h"
#include "tests/gpu/cuda_test_util.h"
#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels::testing {
namespace {

using GpuRuntime = CudaTest;

TEST_F(GpuRuntime, TensorsOnCudaComeFromTheBudgetedAllocator) {
  ASSERT_TRUE(cuda::init_device_memory(0, 0.5).ok());
  const cuda::DeviceMemoryStats before = cuda::device_memory_stats(0);
  EXPECT_EQ(before.budget_bytes, before.total_bytes / 2);
  {
    Tensor t = Tensor::empty(DType::kF32, {989, 128}, Device{DeviceType::kCuda, 0});
    EXPECT_EQ(t.device().type, DeviceType::kCuda);
    EXPECT_EQ(cuda::device_memory_stats(0).in_use_bytes - before.in_use_bytes, 989 * 128 * 4);
    std::vector<float> host(989 * 128, 1.0f);
    ASSERT_EQ(cudaMemcpy(host.data(), t.raw(), t.nbytes(), cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_EQ(host[0], 0.0f);  // zeroed
  }
  EXPECT_EQ(cuda::device_memory_stats(0).in_use_bytes, before.in_use_bytes);
  EXPECT_THROW(Tensor::empty(DType::kU8, {before.budget_bytes + 1}, Device{DeviceType::kCuda, 0}),
               std::bad_alloc);
  EXPECT_FALSE(cuda::init_device_memory(0, 1.5).ok());
}

TEST_F(GpuRuntime, DecodeGraphsReplayTheCapturedStepPerBucket) {
  const int64_t f = 256, max_batch = 20;
  const auto gate_up = random_floats(static_cast<size_t>(max_batch * 2 * f), 30);
  DeviceArray<float> din(gate_up), dout(static_cast<size_t>(max_batch * f));
  cuda::DecodeGraphs graphs(cuda::plan_graph_buckets(static_cast<int>(max_batch)));
  ASSERT_TRUE(graphs
                  .capture([&](int bucket) {
                    cuda_backend().silu_mul({.gate_up = din.get(), .ld_in = 2 * f,
                                             .out = dout.get(), .ld_out = f, .t = bucket,
                                             .f = f});
                  })
                  .ok());
  ASSERT_EQ(cudaMemset(dout.get(), 0, max_batch * f * sizeof(float)), cudaSuccess);
  EXPECT_EQ(graphs.replay(5), 8);
  EXPECT_EQ(graphs.replay(21), std::nullopt);
  ASSERT_EQ(cudaStreamSynchronize(static_cast<cudaStream_t>(graphs.stream())), cudaSuccess);
  std::vector<float> want(static_cast<size_t>(max_batch * f), 0.0f);
  cpu_backend().silu_mul({.gate_up = gate_up.data(), .ld_in = 2 * f, .out = want.data(),
                          .ld_out = f, .t = 8, .f = f});
  EXPECT_LE(relative_error(dout.to_host(), want), 1e-6);
}

}  // namespace
}  // namespace strata::kernels::testing
