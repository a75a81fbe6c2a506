// Batch invariance on real models: 32 requests with different prompts, lengths, seeds and
// sampling settings, arriving at random steps into an engine with a small token budget and
// a cache small enough to force preemption, produce exactly the tokens each produces alone.
#include <map>
#include <random>

#include <gtest/gtest.h>

#include "tests/model/random_llama.h"
#include "tests/test_support.h"
#include "worker/engine/engine.h"
#include "worker/engine/kv_capacity.h"

namespace strata {
namespace {

std::vector<Request> make_requests(const ModelConfig& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Request> requests;
  for (RequestId id = 1; id <= 32; ++id) {
    Request r{.id = id};
    const int prompt_len = 1 + static_cast<int>(rng() % 40);
    r.prompt_ids.push_back(1);
    for (int i = 1; i < prompt_len; ++i) r.prompt_ids.push_back(static_cast<int32_t>(3 + rng() % (c.vocab_size - 3)));
    SamplingParams& p = r.sampling;
    p.max_tokens = 1 + static_cast<int32_t>(rng() % 40);
    p.seed = rng();
    switch (id % 5) {
      case 0: p.temperature = 0.0f; break;
      case 1: p.temperature = 0.8f; p.top_p = 0.9f; break;
      case 2: p.temperature = 1.2f; p.top_k = 20; p.repetition_penalty = 1.2f; break;
      case 3: p.temperature = 0.7f; p.min_p = 0.05f; p.presence_penalty = 0.5f; p.frequency_penalty = 0.3f; break;
      case 4: p.temperature = 1.0f; p.logprobs = 3; break;
    }
    requests.push_back(std::move(r));
  }
  return requests;
}

// Requests sharing prefixes as real traffic does: one of four system prompts, then for some
// a previous request's whole prompt (a later chat turn), then tokens of their own.
std::vector<Request> make_shared_prefix_requests(const ModelConfig& c, uint32_t seed) {
  std::mt19937 rng(seed);
  const auto random_token = [&] { return static_cast<int32_t>(3 + rng() % (c.vocab_size - 3)); };
  std::vector<std::vector<int32_t>> system_prompts(4);
  for (auto& p : system_prompts) {
    p.push_back(1);
    for (int i = 1 + static_cast<int>(rng() % 30); i > 0; --i) p.push_back(random_token());
  }
  std::vector<Request> requests = make_requests(c, seed);
  for (size_t i = 0; i < requests.size(); ++i) {
    std::vector<int32_t> prompt = i > 0 && rng() % 3 == 0 ? requests[rng() % i].prompt_ids
                                                           : system_prompts[rng() % 4];
    for (int n = static_cast<int>(rng() % 12); n > 0; --n) prompt.push_back(random_token());
    prompt.resize(std::min<size_t>(prompt.size(), 100));
    requests[i].prompt_ids = std::move(prompt);
  }
  return requests;
}

std::vector<int32_t> run_alone(const LoadedModel& model, const Request& r,
                               const std::string& kv_cache_dtype) {
  // Same block size as the batched run: the softmax is accumulated block by block.
  EngineConfig config;
  config.scheduler.max_num_batched_tokens = 512;
  config.scheduler.max_num_seqs = 1;
  config.scheduler.block_size = 4;
  config.scheduler.enable_prefix_caching = false;  // the reference recomputes every prompt
  config.kv_cache_dtype = kv_cache_dtype;
  config.kv_cache_bytes = kv_block_bytes(model, config) * 256;
  auto engine = Engine::create(model, config);
  EXPECT_TRUE(engine.ok());
  EXPECT_TRUE((*engine)->add_request(r).ok());
  std::vector<int32_t> out;
  while ((*engine)->has_unfinished()) {
    for (auto& o : (*engine)->step()) for (auto& t : o.new_tokens) out.push_back(t.id);
  }
  return out;
}

// `kv_cache_dtype` as --kv-cache-dtype takes it; the batched run's cache holds 40 blocks of
// that dtype whatever it is. The batched run caches prefixes (the default), so a preempted
// sequence resumes from its own cached blocks and shared prompts reuse each other's.
void check_batch_invariance(const LoadedModel& model, const std::string& kv_cache_dtype = "auto",
                            bool shared_prefixes = false) {
  const auto requests = shared_prefixes ? make_shared_prefix_requests(model.config, 42)
                                        : make_requests(model.config, 42);
  std::map<RequestId, std::vector<int32_t>> alone;
  for (const Request& r : requests) alone[r.id] = run_alone(model, r, kv_cache_dtype);

  EngineConfig config;
  config.scheduler.max_num_batched_tokens = 24;  // prompts span several chunks
  config.scheduler.max_num_seqs = 12;
  config.scheduler.block_size = 4;
  config.scheduler.watermark = 0.0;
  config.kv_cache_dtype = kv_cache_dtype;
  config.kv_cache_bytes = kv_block_bytes(model, config) * 40;  // 160 positions
  auto created = Engine::create(model, config);
  ASSERT_TRUE(created.ok()) << created.status().to_string();
  Engine& engine = **created;
  std::mt19937 rng(7);
  std::map<RequestId, std::vector<int32_t>> batched;
  size_t next = 0;
  int steps = 0;
  while (next < requests.size() || engine.has_unfinished()) {
    // Requests arrive a few at a time, at random steps.
    while (next < requests.size() && rng() % 3 == 0) ASSERT_TRUE(engine.add_request(requests[next++]).ok());
    for (auto& o : engine.step()) for (auto& t : o.new_tokens) batched[o.id].push_back(t.id);
    ASSERT_LT(++steps, 20000);
  }
  EXPECT_GT(engine.stats().num_preemptions, 0) << "the cache was meant to force preemption";
  const SchedulerStats st = engine.stats();
  EXPECT_EQ(st.blocks.free + st.blocks.cached, st.blocks.total) << "a block is still referenced";
  EXPECT_GT(st.prefix_cache_hits, 0);
  if (shared_prefixes) EXPECT_GT(st.prefix_cache_evictions, 0) << "the cache was meant to force evictions";
  for (const Request& r : requests) EXPECT_EQ(batched[r.id], alone[r.id]) << "request " << r.id;
}

TEST(BatchInvariance, Aidreams260K) {
  STRATA_REQUIRE_SHARED_FILE(path, "models/aidreams260K/aidreams260K.bin");
  auto model = load_model(path.string());
  ASSERT_TRUE(model.ok());
  check_batch_invariance(**model);
}

// Prefix caching is exact: prompts sharing system prompts and earlier turns, arriving in
// random order into a cache that must evict, give each request's tokens computed alone
// without a cache.
TEST(BatchInvariance, SharedPrefixesServedFromCacheOnTrainedModels) {
  for (const char* name : {"models/stories260K/stories260K.bin", "models/aidreams260K/aidreams260K.bin"}) {
    STRATA_REQUIRE_SHARED_FILE(path, name);
    SCOPED_TRACE(name);
    auto model = load_model(path.string());
    ASSERT_TRUE(model.ok());
    check_batch_invariance(**model, "auto", true);
  }
}

TEST(BatchInvariance, SharedPrefixesServedFromCacheInBf16WithInt8Kv) {
  auto model = load_model("builtin:tiny", {.dtype = DType::kBF16});
  ASSERT_TRUE(model.ok());
  check_batch_invariance(**model, "int8", true);
}

TEST(BatchInvariance, Stories260KWithGqa) {
  STRATA_REQUIRE_SHARED_FILE(path, "models/stories260K/stories260K.bin");
  auto model = load_model(path.string());
  ASSERT_TRUE(model.ok());
  check_batch_invariance(**model);
}

TEST(BatchInvariance, RandomGqaModelInBf16) {
  const auto m = testing::make_random_llama({72, 172, 2, 6, 3, 97, 256}, false, 5);
  const auto path = (std::filesystem::temp_directory_path() / "strata_invariance.bin").string();
  testing::write_llama2c(m, path);
  auto model = load_model(path, {.dtype = DType::kBF16});
  ASSERT_TRUE(model.ok());
  check_batch_invariance(**model);
}

// Quantized weights keep the guarantee: W8A8 sums int8 products exactly and quantizes each
// token's activations from that token alone; W4A16 reduces each output in an order set by k.
TEST(BatchInvariance, Stories260KWithW8A8AndW4A16Weights) {
  STRATA_REQUIRE_SHARED_FILE(path, "models/stories260K/stories260K.bin");
  for (Quantization scheme : {Quantization::kW8A8, Quantization::kW4A16}) {
    SCOPED_TRACE(std::string(quantization_name(scheme)));
    auto model = load_model(path.string(), {.quantization = scheme});
    ASSERT_TRUE(model.ok());
    check_batch_invariance(**model);
  }
}

TEST(BatchInvariance, BuiltinModelWithW4A16WeightsInBf16) {
  // builtin:tiny's k (128, 384) are multiples of the int4 group: every matrix is int4.
  auto model = load_model("builtin:tiny", {.dtype = DType::kBF16, .quantization = Quantization::kW4A16});
  ASSERT_TRUE(model.ok());
  check_batch_invariance(**model);
}

// A token's int8 KV is quantized from that token's vector alone, once, whichever step wrote
// it; bf16 and fp16 caches round each value alone.
TEST(BatchInvariance, Stories260KWithInt8AndHalfKvCaches) {
  STRATA_REQUIRE_SHARED_FILE(path, "models/stories260K/stories260K.bin");
  auto model = load_model(path.string());
  ASSERT_TRUE(model.ok());
  for (const char* dtype : {"int8", "fp16"}) {
    SCOPED_TRACE(dtype);
    check_batch_invariance(**model, dtype);
  }
}

TEST(BatchInvariance, BuiltinModelWithW8A8WeightsAndInt8KvInBf16) {
  auto model = load_model("builtin:tiny", {.dtype = DType::kBF16, .quantization = Quantization::kW8A8});
  ASSERT_TRUE(model.ok());
  check_batch_invariance(**model, "int8");
}

}  // namespace
}  // namespace strata
