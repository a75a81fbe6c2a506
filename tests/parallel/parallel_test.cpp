// Tensor and pipeline parallelism under real mpirun ranks. Every rank runs every test, in
// the same order (the tests are collective). For each layout tp × pp that fits the world,
// the sharded forward pass gives logits within 1e-4 (relative) of one rank holding the
// whole model, and the distributed engine generates the same greedy tokens.
#include <mpi.h>

#include <cstring>
#include <filesystem>
#include <map>

#include <gtest/gtest.h>

#include "parallel/mpi_communicator.h"
#include "parallel/parallel_context.h"
#include "tests/model/random_llama.h"
#include "tests/test_support.h"
#include "worker/engine/engine.h"
#include "worker/model/model_loader.h"
#include "worker/engine/model_runner.h"

namespace strata {
namespace {

int world_size() { return mpi_world_size(); }

// The layouts this world size can run.
std::vector<std::pair<int, int>> layouts() {
  std::vector<std::pair<int, int>> out;  // (tp, pp)
  for (int tp = 1; tp <= world_size(); ++tp) {
    if (world_size() % tp == 0 && !(tp == 1 && world_size() == 1)) out.push_back({tp, world_size() / tp});
  }
  return out;
}

double relative_error(const float* got, const float* want, size_t n) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < n; ++i) {
    diff = std::max(diff, std::abs(double(got[i]) - want[i]));
    scale = std::max(scale, std::abs(double(want[i])));
  }
  return diff / scale;
}

// Logits of a prefill of `prompt` followed by `decode_steps` single-token steps, for every
// step (empty on ranks that are not in the last stage).
std::vector<std::vector<float>> run_steps(const LoadedModel& m, ParallelContext* ctx,
                                          const std::vector<int32_t>& tokens, int prefill) {
  LlamaModel forward(m.config, m.weights, kernels::cpu_backend(), ctx);
  const int block_size = 8;
  const int blocks = static_cast<int>(tokens.size()) / block_size + 1;
  KvCache cache(m.config, m.weights.shard, block_size, blocks, DType::kF32);
  std::vector<int32_t> table(blocks);
  for (int i = 0; i < blocks; ++i) table[i] = blocks - 1 - i;
  std::vector<std::vector<float>> out;
  std::vector<float> logits;
  ForwardBatch first{{tokens.begin(), tokens.begin() + prefill}, {{0, prefill, table, true}}};
  forward.forward(first, cache, logits);
  out.push_back(logits);
  for (size_t pos = static_cast<size_t>(prefill); pos < tokens.size(); ++pos) {
    ForwardBatch step{{tokens[pos]}, {{static_cast<int32_t>(pos), 1, table, true}}};
    forward.forward(step, cache, logits);
    out.push_back(logits);
  }
  return out;
}

void check_logits(const std::string& path) {
  auto full = load_model(path);
  ASSERT_TRUE(full.ok()) << full.status().to_string();
  std::vector<int32_t> tokens;
  for (int i = 0; i < 40; ++i) tokens.push_back(static_cast<int32_t>((i * 37 + 11) % (*full)->config.vocab_size));
  const auto reference = run_steps(**full, nullptr, tokens, 24);
  for (auto [tp, pp] : layouts()) {
    SCOPED_TRACE(::testing::Message() << "tp " << tp << " pp " << pp);
    auto ctx = ParallelContext::mpi(tp, pp);
    ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
    auto shard = load_model(path, {.topology = ctx->topology});
    ASSERT_TRUE(shard.ok()) << shard.status().to_string();
    const auto got = run_steps(**shard, &*ctx, tokens, 24);
    ASSERT_EQ(got.size(), reference.size());
    if (!ctx->topology.is_last_stage()) continue;
    for (size_t s = 0; s < got.size(); ++s) {
      ASSERT_EQ(got[s].size(), reference[s].size());
      EXPECT_LT(relative_error(got[s].data(), reference[s].data(), got[s].size()), 1e-4) << "step " << s;
    }
  }
}

// Tokens of a few requests through the distributed engine equal one rank's: greedy on every
// layout; sampled (temperature, top-p, penalties, seeds, logprobs) where the layout keeps
// the logits bit-identical (pipeline stages only: no TP reduction order changes), which
// also checks that the last stage's sampling mirror follows the driver's requests exactly.
// With `ngram`, the distributed engines speculate (prompt lookup over prompts that repeat
// themselves): draft rows travel in the plans and are verified on the last stage.
void check_tokens(const std::string& path, bool sampled, bool ngram = false) {
  auto full = load_model(path);
  ASSERT_TRUE(full.ok());
  EngineConfig config;
  config.scheduler.max_num_batched_tokens = 16;
  config.scheduler.block_size = 8;
  config.kv_cache_bytes = KvCache::bytes_per_block((*full)->config, 8, DType::kF32) * 64;
  std::vector<Request> requests;
  for (RequestId id = 1; id <= 4; ++id) {
    Request r{.id = id, .prompt_ids = {1}};
    for (int i = 0; i < 5 + static_cast<int>(id) * 3; ++i) r.prompt_ids.push_back(static_cast<int32_t>(3 + (id * 31 + i * 7) % ((*full)->config.vocab_size - 3)));
    if (ngram) r.prompt_ids.insert(r.prompt_ids.end(), r.prompt_ids.begin() + 1, r.prompt_ids.end());
    r.sampling.temperature = 0.0f;
    r.sampling.max_tokens = 12;
    r.sampling.ignore_eos = true;
    if (sampled) {
      r.sampling.temperature = 0.9f;
      r.sampling.top_p = 0.9f;
      r.sampling.repetition_penalty = 1.1f;
      r.sampling.logprobs = 2;
      if (id % 2 == 0) r.sampling.seed = 1000 + id;  // the others take the engine's seeds
    }
    requests.push_back(r);
  }
  auto generate = [&](Engine& engine) {
    std::map<RequestId, std::vector<int32_t>> out;
    for (const Request& r : requests) {
      const Status st = engine.add_request(r);
      EXPECT_TRUE(st.ok()) << st.to_string();
    }
    while (engine.has_unfinished()) {
      for (auto& o : engine.step()) for (auto& t : o.new_tokens) out[o.id].push_back(t.id);
    }
    return out;
  };
  std::map<RequestId, std::vector<int32_t>> alone;
  {
    auto engine = Engine::create(**full, config);
    ASSERT_TRUE(engine.ok());
    alone = generate(**engine);
  }
  for (auto [tp, pp] : layouts()) {
    if (sampled && tp > 1) continue;
    SCOPED_TRACE(::testing::Message() << "tp " << tp << " pp " << pp);
    auto ctx = ParallelContext::mpi(tp, pp);
    ASSERT_TRUE(ctx.ok());
    auto shard = load_model(path, {.topology = ctx->topology});
    ASSERT_TRUE(shard.ok());
    EngineConfig layout_config = config;
    if (ngram) {
      layout_config.speculative.method = "ngram";
      layout_config.scheduler.speculative_governor = false;
    }
    if (ctx->topology.is_driver()) {
      auto engine = Engine::create(**shard, layout_config, &*ctx);
      ASSERT_TRUE(engine.ok());
      EXPECT_EQ(generate(**engine), alone);
      if (ngram) {
        EXPECT_GT((*engine)->stats().spec_accepted_tokens, 0);
      }
    } else {
      EXPECT_TRUE(run_engine_follower(**shard, layout_config, *ctx).ok());
    }
  }
}

// Plans of a few requests on a cache small enough to preempt, made by one scheduler driven
// by a one-rank runner's greedy tokens; with each plan, that runner's logits.
struct RecordedSteps {
  std::vector<StepPlan> plans;
  std::vector<std::vector<float>> logits;
};

constexpr int kRunnerBlockSize = 4;
constexpr int64_t kRunnerBlocks = 14;

RecordedSteps record_steps(const LoadedModel& full) {
  Scheduler scheduler({.max_num_batched_tokens = 12, .max_num_seqs = 4, .block_size = kRunnerBlockSize,
                       .watermark = 0.0, .max_model_len = 64},
                      kRunnerBlocks);
  for (RequestId id = 1; id <= 4; ++id) {
    Request r{.id = id};
    for (int i = 0; i < 6 + static_cast<int>(id) * 2; ++i) {
      r.prompt_ids.push_back(static_cast<int32_t>(1 + (id * 29 + i * 11) % (full.config.vocab_size - 1)));
    }
    r.sampling.temperature = 0.0f;
    r.sampling.max_tokens = 14;
    r.sampling.ignore_eos = true;
    EXPECT_TRUE(scheduler.add(r).ok());
  }
  ModelRunner runner(full, nullptr, kRunnerBlockSize, kRunnerBlocks, DType::kF32);
  RecordedSteps out;
  while (scheduler.has_unfinished()) {
    StepPlan plan = scheduler.schedule();
    const StepResult result = plan.empty() ? StepResult{} : runner.execute(plan);
    scheduler.update(plan, result);
    if (plan.empty()) continue;
    out.logits.push_back(runner.last_logits());
    out.plans.push_back(std::move(plan));
  }
  EXPECT_GT(scheduler.stats().num_preemptions, 0) << "the cache is meant to force recompute";
  return out;
}

// Every rank's runner executes the same recorded plans: the last stage's logits equal the
// one-rank runner's bit for bit when only pipeline stages split the model (same kernels,
// same order), and within float tolerance when tensor parallelism changes the reduction.
void check_runner_logits(const std::string& path) {
  auto full = load_model(path);
  ASSERT_TRUE(full.ok());
  const RecordedSteps reference = record_steps(**full);
  ASSERT_FALSE(reference.plans.empty());
  for (auto [tp, pp] : layouts()) {
    SCOPED_TRACE(::testing::Message() << "tp " << tp << " pp " << pp);
    auto ctx = ParallelContext::mpi(tp, pp);
    ASSERT_TRUE(ctx.ok());
    auto shard = load_model(path, {.topology = ctx->topology});
    ASSERT_TRUE(shard.ok());
    ModelRunner runner(**shard, &*ctx, kRunnerBlockSize, kRunnerBlocks, DType::kF32);
    for (size_t step = 0; step < reference.plans.size(); ++step) {
      runner.execute(reference.plans[step]);
      if (!ctx->topology.is_last_stage()) continue;
      const std::vector<float>& got = runner.last_logits();
      const std::vector<float>& want = reference.logits[step];
      ASSERT_EQ(got.size(), want.size()) << "step " << step;
      if (tp == 1) {
        EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float))) << "step " << step;
      } else if (!got.empty()) {
        EXPECT_LT(relative_error(got.data(), want.data(), got.size()), 1e-4) << "step " << step;
      }
    }
  }
}

std::string random_model(const std::string& name, testing::RefConfig c, bool tied) {
  // Every rank writes the same bytes to its own file (same seed).
  const auto path = std::filesystem::temp_directory_path() /
                    ("strata_mpi_" + name + "_" + std::to_string(mpi_world_rank()) + ".bin");
  testing::write_llama2c(testing::make_random_llama(c, tied, 17), path.string());
  return path.string();
}

TEST(TensorPipelineParallel, Stories260KLogitsMatchOneRank) {
  STRATA_REQUIRE_SHARED_FILE(path, "models/stories260K/stories260K.bin");
  check_logits(path.string());
}

TEST(TensorPipelineParallel, Stories260KGreedyTokensMatchOneRank) {
  STRATA_REQUIRE_SHARED_FILE(path, "models/stories260K/stories260K.bin");
  check_tokens(path.string(), false);
}

TEST(TensorPipelineParallel, Stories260KGreedyTokensWithNgramSpeculationMatchOneRank) {
  STRATA_REQUIRE_SHARED_FILE(path, "models/stories260K/stories260K.bin");
  check_tokens(path.string(), false, true);
}

TEST(TensorPipelineParallel, Stories260KSampledTokensMatchOneRankAcrossPipelineStages) {
  STRATA_REQUIRE_SHARED_FILE(path, "models/stories260K/stories260K.bin");
  check_tokens(path.string(), true);
}

// 8 heads over 2 KV heads: tp 4 replicates each KV head on two ranks (tp > n_kv); odd FFN
// width 172 splits unevenly; the vocabulary (97) pads to a multiple of tp.
TEST(TensorPipelineParallel, RandomGqaModelWithReplicatedKvHeads) {
  const std::string path = random_model("gqa", {64, 172, 4, 8, 2, 97, 64}, false);
  check_logits(path);
  check_tokens(path, false);
  check_tokens(path, true);
}

TEST(ModelRunnerAcrossRanks, Stories260KSamePlansGiveOneRanksLogits) {
  STRATA_REQUIRE_SHARED_FILE(path, "models/stories260K/stories260K.bin");
  check_runner_logits(path.string());
}

TEST(ModelRunnerAcrossRanks, RandomGqaModelSamePlansGiveOneRanksLogits) {
  check_runner_logits(random_model("runner_gqa", {64, 172, 4, 8, 2, 97, 64}, false));
}

TEST(TensorPipelineParallel, ModelThatCannotSplitGetsAClearError) {
  const std::string path = random_model("odd", {48, 64, 1, 3, 3, 50, 32}, true);
  if (world_size() == 1) GTEST_SKIP() << "needs mpirun";
  auto model = load_model(path, {.topology = {.tp = world_size(), .pp = 1, .world_rank = mpi_world_rank()}});
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("3 attention heads cannot be split"), std::string::npos)
      << model.status().message();
}

}  // namespace
}  // namespace strata

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (!strata::mpi_initialize(&argc, &argv).ok()) return 2;
  // Only rank 0 prints; every rank's failures still fail the process.
  if (strata::mpi_world_rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int result = RUN_ALL_TESTS();
  int any_failed = result != 0;
  MPI_Allreduce(MPI_IN_PLACE, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  strata::mpi_finalize();
  return any_failed;
}
