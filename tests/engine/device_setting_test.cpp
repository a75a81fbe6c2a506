// The `device` setting: its parsing, and the clean errors a CUDA request gets where it
// cannot run — a build without CUDA names -DSTRATA_CUDA=ON, a CUDA build on a machine
// without a GPU says to use --device cpu; each rank of a GPU group takes its local rank's
// GPU, and a build without NCCL refuses GPU groups saying how to rebuild.
// Nothing here needs a GPU; the GPU case skips where one is present.
#include <gtest/gtest.h>

#include "kernels/device.h"
#include "parallel/nccl_communicator.h"
#include "parallel/rank_device.h"
#include "worker/engine/engine.h"
#include "worker/model/model_loader.h"
#include "worker/server/worker_options.h"

namespace strata {
namespace {

bool cuda_built() { return find_device_runtime(DeviceType::kCuda) != nullptr; }
bool gpu_visible() { return device_count(DeviceType::kCuda) > 0; }

TEST(DeviceSetting, ParsesCpuCudaAndCudaN) {
  EXPECT_EQ(*parse_device("cpu"), Device{});
  EXPECT_EQ(*parse_device("cuda"), (Device{DeviceType::kCuda, 0}));
  EXPECT_EQ(*parse_device("cuda:3"), (Device{DeviceType::kCuda, 3}));
  for (const char* bad : {"gpu", "cuda:", "cuda:-1", "cuda:1x", "CPU"}) {
    const auto d = parse_device(bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_NE(d.status().message().find("--device"), std::string::npos);
    EXPECT_NE(d.status().message().find(bad), std::string::npos);
  }
}

TEST(DeviceSetting, TheCpuIsAlwaysRegisteredAndCountsAsOneDevice) {
  const DeviceRuntime* cpu = find_device_runtime(DeviceType::kCpu);
  ASSERT_NE(cpu, nullptr);
  EXPECT_EQ(cpu->backend, &kernels::cpu_backend());
  EXPECT_EQ(&backend_for(Device{}), &kernels::cpu_backend());
  EXPECT_EQ(device_count(DeviceType::kCpu), 1);
  EXPECT_TRUE(init_device(Device{}, 0.5).ok());
  EXPECT_EQ(device_memory_use(Device{}).total_bytes, 0);
  // Without the CUDA backend the decode graphs capture nothing, and steps run eagerly.
  if (!cuda_built()) {
    DecodeGraphRunner graphs({1, 2});
    EXPECT_FALSE(graphs.captured());
    EXPECT_FALSE(graphs.replay(1));
  }
}

TEST(DeviceSetting, CudaWithoutABuildOrAGpuFailsWithWhatToDo) {
  if (gpu_visible()) GTEST_SKIP() << "a GPU is visible: CUDA requests succeed here";
  const Status st = init_device({DeviceType::kCuda, 0}, 0.9);
  ASSERT_FALSE(st.ok());
  if (cuda_built()) {
    EXPECT_EQ(st.message(), "no CUDA device found; use --device cpu");
  } else {
    EXPECT_NE(st.message().find("-DSTRATA_CUDA=ON"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("--device cpu"), std::string::npos) << st.message();
  }
  // Loading onto it fails the same way, before reading any weights.
  const auto model = load_model("builtin:tiny", {.device = {DeviceType::kCuda, 0}});
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().message(), st.message());
}

TEST(RankDevice, EachRankOfAGpuGroupTakesTheGpuOfItsLocalRank) {
  const Device cuda{DeviceType::kCuda, 0};
  for (int local = 0; local < 4; ++local) {
    const auto device = rank_device(cuda, 8, local, 4);
    ASSERT_TRUE(device.ok()) << device.status().message();
    EXPECT_EQ(*device, (Device{DeviceType::kCuda, local}));
  }
  EXPECT_EQ(*rank_device({}, 8, 3, 0), Device{}) << "CPU groups stay on the CPU";
  EXPECT_EQ(*rank_device({DeviceType::kCuda, 2}, 1, 0, 4), (Device{DeviceType::kCuda, 2}))
      << "one rank keeps the device it was given";
}

TEST(RankDevice, MoreRanksOnAHostThanGpusIsRefusedSayingWhatToDo) {
  const auto device = rank_device({DeviceType::kCuda, 0}, 4, 2, 2);
  ASSERT_FALSE(device.ok());
  EXPECT_NE(device.status().message().find("needs GPU cuda:2, but 2 are visible"), std::string::npos)
      << device.status().message();
  EXPECT_NE(device.status().message().find("ppr:2:node"), std::string::npos);
  const auto named = rank_device({DeviceType::kCuda, 1}, 2, 0, 2);
  ASSERT_FALSE(named.ok());
  EXPECT_NE(named.status().message().find("CUDA_VISIBLE_DEVICES"), std::string::npos);
}

TEST(RankDevice, AGpuGroupWithoutNcclIsRefusedClearly) {
  if (cuda_built()) GTEST_SKIP() << "this build has NCCL";
  const auto comm = make_nccl_world_communicator({.device = 0});
  ASSERT_FALSE(comm.ok());
  EXPECT_NE(comm.status().message().find("-DSTRATA_CUDA=ON"), std::string::npos)
      << comm.status().message();
}

TEST(DeviceSetting, EngineDeviceMustBeWhereTheWeightsAre) {
  const auto model = load_model("builtin:tiny");
  ASSERT_TRUE(model.ok());
  EngineConfig config;
  config.device = {DeviceType::kCuda, 0};
  const auto engine = Engine::create(**model, config);
  ASSERT_FALSE(engine.ok());
  EXPECT_NE(engine.status().message().find("weights are on cpu"), std::string::npos)
      << engine.status().message();
}

TEST(DeviceSetting, WorkerOptionsCarryDeviceFractionAndGraphs) {
  WorkerOptions o;
  EXPECT_EQ(o.load.device, "cpu");
  const std::vector<std::string> args = o.to_args();
  for (const char* flag : {"--device", "--gpu-memory-fraction", "--cuda-graphs"}) {
    EXPECT_NE(std::find(args.begin(), args.end(), flag), args.end()) << flag;
  }
  o.load.device = "cuda:1";
  o.server.engine.gpu_memory_fraction = 0.5;
  o.server.engine.cuda_graphs = false;
  const auto server = o.server_config();
  ASSERT_TRUE(server.ok());
  EXPECT_EQ(server->engine.device, (Device{DeviceType::kCuda, 1}));
  EXPECT_EQ(server->engine.gpu_memory_fraction, 0.5);
  EXPECT_FALSE(server->engine.cuda_graphs);
  const auto load = o.load_options({});
  ASSERT_TRUE(load.ok());
  EXPECT_EQ(load->device, (Device{DeviceType::kCuda, 1}));
  o.load.device = "tpu";
  EXPECT_FALSE(o.server_config().ok());
  o.server.engine.gpu_memory_fraction = 1.5;
  EXPECT_FALSE(config::check_ranges(o).ok());
}

}  // namespace
}  // namespace strata
