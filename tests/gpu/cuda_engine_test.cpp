// The engine on the GPU against itself on the CPU: the device-generic forward (weights,
// activations and KV cache on cuda:0) gives the CPU's logits within fp32 tolerance, decode
// steps replayed from CUDA graphs give the eager GPU steps' logits, and an Engine with
// --device cuda serves requests to completion. Skips without a GPU.
#include <numeric>

#include "tests/gpu/cuda_test_util.h"
#include "worker/engine/engine.h"
#include "worker/model/llama_model.h"
#include "worker/model/model_loader.h"

namespace strata::kernels::testing {
namespace {

using GpuEngine = CudaTest;
constexpr Device kCuda{DeviceType::kCuda, 0};

// Two prompts in one step, then decode steps of both; each model runs the same steps.
class TwoSequences {
 public:
  explicit TwoSequences(int vocab) : vocab_(vocab) {
    table_a_.resize(8);
    table_b_.resize(8);
    std::iota(table_a_.begin(), table_a_.end(), 0);
    std::iota(table_b_.begin(), table_b_.end(), 8);
  }
  ForwardBatch prefill() {
    ForwardBatch b;
    for (int i = 0; i < 37; ++i) b.token_ids.push_back((i * 31 + 3) % vocab_);
    for (int i = 0; i < 11; ++i) b.token_ids.push_back((i * 17 + 5) % vocab_);
    b.sequences = {{0, 37, table_a_, true}, {0, 11, table_b_, true}};
    len_a_ = 37;
    len_b_ = 11;
    return b;
  }
  ForwardBatch decode(int step) {
    ForwardBatch b{{(step * 7 + 1) % vocab_, (step * 13 + 2) % vocab_},
                   {{len_a_, 1, table_a_, true}, {len_b_, 1, table_b_, true}}};
    ++len_a_;
    ++len_b_;
    return b;
  }

 private:
  int vocab_;
  std::vector<int32_t> table_a_, table_b_;
  int32_t len_a_ = 0, len_b_ = 0;
};

TEST_F(GpuEngine, ForwardOnCudaMatchesCpuAndGraphsMatchEagerSteps) {
  auto cpu = load_model("builtin:tiny", {.dtype = DType::kF32});
  auto gpu = load_model("builtin:tiny", {.dtype = DType::kF32, .device = kCuda});
  ASSERT_TRUE(cpu.ok() && gpu.ok()) << gpu.status().to_string();
  const ModelConfig& c = (*cpu)->config;
  const int block_size = 16, num_blocks = 17;  // 16 for the sequences, 1 scratch
  KvCache cache_cpu(c, block_size, num_blocks, DType::kF32);
  KvCache cache_eager(c, block_size, num_blocks, DType::kF32, kCuda);
  KvCache cache_graphs(c, block_size, num_blocks, DType::kF32, kCuda);
  LlamaModel on_cpu(c, (*cpu)->weights);
  LlamaModel eager(c, (*gpu)->weights, cuda_backend());
  LlamaModel graphed(c, (*gpu)->weights, cuda_backend());
  ASSERT_TRUE(graphed
                  .enable_padded_decode({.buckets = {1, 2, 4}, .max_model_len = 128,
                                         .scratch_block = 16, .max_num_tokens = 64},
                                        cache_graphs)
                  .ok());
  TwoSequences steps(static_cast<int>(c.vocab_size));
  std::vector<float> want, got_eager, got_graphs;
  for (int step = 0; step < 6; ++step) {
    const ForwardBatch batch = step == 0 ? steps.prefill() : steps.decode(step);
    on_cpu.forward(batch, cache_cpu, want);
    eager.forward(batch, cache_eager, got_eager);
    graphed.forward(batch, cache_graphs, got_graphs);
    EXPECT_LE(relative_error(got_eager, want), 1e-4) << "step " << step;
    EXPECT_LE(relative_error(got_graphs, got_eager), 1e-5) << "step " << step;
    EXPECT_EQ(graphed.last_step_graphed(), step > 0) << "step " << step;
  }
}

TEST_F(GpuEngine, EngineOnCudaServesRequestsToCompletion) {
  auto model = load_model("builtin:tiny", {.device = kCuda, .gpu_memory_fraction = 0.5});
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  for (bool graphs : {true, false}) {
    SCOPED_TRACE(::testing::Message() << "cuda_graphs=" << graphs);
    EngineConfig config;
    config.device = kCuda;
    config.gpu_memory_fraction = 0.5;
    config.cuda_graphs = graphs;
    config.scheduler.max_num_seqs = 8;
    config.scheduler.max_model_len = 256;
    auto engine = Engine::create(**model, config);
    ASSERT_TRUE(engine.ok()) << engine.status().to_string();
    EXPECT_GT((*engine)->num_kv_blocks(), 0);
    for (RequestId id = 1; id <= 5; ++id) {
      Request r{.id = id, .prompt_ids = {1, static_cast<int32_t>(10 + id), 7}};
      r.sampling.temperature = id % 2 == 0 ? 0.0f : 0.8f;
      r.sampling.max_tokens = 12;
      r.sampling.seed = id;
      ASSERT_TRUE((*engine)->add_request(r).ok());
    }
    int finished = 0, steps = 0;
    while ((*engine)->has_unfinished() && ++steps < 1000) {
      for (const SequenceOutput& o : (*engine)->step()) finished += o.finished() ? 1 : 0;
    }
    EXPECT_EQ(finished, 5);
  }
}

}  // namespace
}  // namespace strata::kernels::testing
