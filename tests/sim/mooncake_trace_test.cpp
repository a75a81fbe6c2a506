// Mooncake traces end to end of the replay path: the JSONL reader (and its errors), block
// identity through shaping and prompt synthesis, and the simulator modelling the prefix
// cache with the worker's own scheduler and the router's prefix-aware placement.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "tests/test_support.h"
#include "tools/bench/prompts.h"
#include "tools/bench/trace.h"
#include "tools/bench/trace_shaping.h"
#include "tools/sim/simulator.h"

namespace strata {
namespace {

std::string write_temp(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / name;
  std::ofstream(path) << text;
  return path.string();
}

TEST(MooncakeTrace, ReadsRowsAndRebasesTime) {
  const std::string path = write_temp("strata_mooncake_ok.jsonl",
                                      "{\"timestamp\": 1000, \"input_length\": 1030, \"output_length\": 7, \"hash_ids\": [4, 5, 6]}\n"
                                      "{\"timestamp\": 3500, \"input_length\": 512, \"output_length\": 1, \"hash_ids\": [4]}\n");
  const auto rows = load_trace(path);
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_DOUBLE_EQ((*rows)[0].arrival_s, 0);
  EXPECT_DOUBLE_EQ((*rows)[1].arrival_s, 2.5);
  EXPECT_EQ((*rows)[0].prompt_tokens, 1030);
  EXPECT_EQ((*rows)[0].block_ids, (std::vector<int64_t>{4, 5, 6}));
}

TEST(MooncakeTrace, ErrorsNameTheFileLineAndField) {
  struct Case {
    std::string line, expected;
  } cases[] = {
      {"{\"input_length\": 5, \"output_length\": 1, \"hash_ids\": [1]}", "`timestamp`"},
      {"{\"timestamp\": 0, \"input_length\": -5, \"output_length\": 1, \"hash_ids\": [1]}", "`input_length`"},
      {"{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 1, \"hash_ids\": 3}", "`hash_ids`"},
      {"{\"timestamp\": 0, \"input_length\": 1025, \"output_length\": 1, \"hash_ids\": [1, 2]}", "3 blocks"},
      {"not json", "not a JSON object"},
  };
  for (const Case& c : cases) {
    const std::string path = write_temp("strata_mooncake_bad.jsonl", "{\"timestamp\": 0, \"input_length\": 1, "
                                                                     "\"output_length\": 1, \"hash_ids\": [0]}\n" + c.line + "\n");
    const auto rows = load_trace(path);
    ASSERT_FALSE(rows.ok()) << c.line;
    EXPECT_NE(rows.status().message().find(path + ":2"), std::string::npos) << rows.status().message();
    EXPECT_NE(rows.status().message().find(c.expected), std::string::npos) << rows.status().message();
  }
}

// Equal leading block ids give equal leading tokens, block by block, after scaling.
TEST(MooncakeTrace, SynthesizedPromptsShareExactlyTheirSharedBlocks) {
  const std::vector<TraceRequest> rows = {{.arrival_s = 0, .prompt_tokens = 1300, .output_tokens = 64, .block_ids = {0, 1, 2}},
                                          {.arrival_s = 1, .prompt_tokens = 1536, .output_tokens = 64, .block_ids = {0, 1, 9}}};
  const auto shaped = bench::shape_trace(rows, {.length_scale = 1.0 / 32});
  ASSERT_EQ(shaped.size(), 2u);
  EXPECT_EQ(shaped[0].block_tokens, 16);
  EXPECT_EQ(shaped[0].input_tokens, 41);  // round(1300 / 32)
  const auto a = bench::block_prompt(shaped[0], 3, 258, 7);
  const auto b = bench::block_prompt(shaped[1], 3, 258, 7);
  ASSERT_EQ(a.size(), 41u);
  ASSERT_EQ(b.size(), 48u);
  EXPECT_TRUE(std::equal(a.begin(), a.begin() + 32, b.begin()));
  EXPECT_FALSE(std::equal(a.begin() + 32, a.end(), b.begin() + 32)) << "block 2 and block 9 differ";
  EXPECT_EQ(bench::block_prompt(shaped[0], 3, 258, 7), a) << "deterministic";
  for (int32_t id : a) EXPECT_TRUE(id >= 3 && id <= 258);
  // Skipping rows rebases the arrivals.
  const auto skipped = bench::shape_trace(rows, {.start = 1});
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_DOUBLE_EQ(skipped[0].arrival_s, 0);
}

// The shared trace as its README describes it: 3,993 requests, and 64.0% of all prompt
// blocks repeat one seen earlier.
TEST(MooncakeTrace, TheSharedTraceHasThePublishedRepeatFraction) {
  STRATA_REQUIRE_SHARED_FILE(path, "traces/mooncake_synthetic_trace.jsonl");
  const auto rows = load_trace(path.string());
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  ASSERT_EQ(rows->size(), 3993u);
  std::set<int64_t> seen;
  int64_t blocks = 0, repeats = 0;
  for (const TraceRequest& r : *rows) {
    for (int64_t id : r.block_ids) {
      ++blocks;
      repeats += !seen.insert(id).second;
    }
  }
  EXPECT_NEAR(static_cast<double>(repeats) / static_cast<double>(blocks), 0.640, 0.0005);
}

sim::SimConfig prefix_config(bool prefix_caching, int groups = 1) {
  sim::SimConfig c{.num_groups = groups, .blocks_per_group = 256, .cost = {.a = 0.010, .b = 0.001}};
  c.worker.block_size = 16;
  c.worker.max_num_batched_tokens = 512;
  c.worker.max_num_seqs = 16;
  c.worker.max_model_len = 2048;
  c.worker.watermark = 0;
  c.worker.enable_prefix_caching = prefix_caching;
  return c;
}

sim::SimPolicy on_demand(router::Placement placement = router::Placement::kPrefixAware) {
  auto p = sim::parse_sim_policy("on-demand", {});
  EXPECT_TRUE(p.ok());
  p->router.placement.placement = placement;
  return *p;
}

// The second request repeats the first's 64-token prompt and adds 8: with the cache it
// prefills only those 8 (10 ms + 8 × 1 ms), without it all 72.
TEST(SimulatorPrefixCache, ASharedPrefixIsPrefilledOnce) {
  std::vector<int32_t> prompt(64);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(100 + i);
  std::vector<int32_t> longer = prompt;
  longer.insert(longer.end(), {1, 2, 3, 4, 5, 6, 7, 8});
  const std::vector<sim::SimRequest> requests = {
      {.arrival_s = 0, .prompt_tokens = 64, .output_tokens = 1, .max_tokens = 1, .prompt_ids = prompt},
      {.arrival_s = 1, .prompt_tokens = 72, .output_tokens = 1, .max_tokens = 1, .prompt_ids = longer}};
  const auto cached = sim::simulate(prefix_config(true), on_demand(), requests);
  const auto recomputed = sim::simulate(prefix_config(false), on_demand(), requests);
  ASSERT_TRUE(cached.ok() && recomputed.ok());
  EXPECT_NEAR(cached->requests[1].ttft_s, 0.018, 1e-9);
  EXPECT_NEAR(recomputed->requests[1].ttft_s, 0.082, 1e-9);
  EXPECT_EQ(cached->prefix_cache_hits, 64);
  EXPECT_EQ(cached->prefix_cache_queries, 64 + 72);
  EXPECT_EQ(recomputed->prefix_cache_hits, 0);
}

// Requests without token ids share nothing, as before prefix caching was modelled.
TEST(SimulatorPrefixCache, PromptsWithoutIdsNeverHit) {
  const std::vector<sim::SimRequest> requests(4, {.arrival_s = 0, .prompt_tokens = 64, .output_tokens = 2, .max_tokens = 2});
  const auto r = sim::simulate(prefix_config(true), on_demand(), requests);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->prefix_cache_hits, 0);
}

// Eight conversations, each turn resending the last with 16 more tokens, over four groups,
// in a different order every turn: prefix-aware placement finds a conversation's cache
// again, least loaded mostly does not.
TEST(SimulatorPrefixCache, PrefixAwarePlacementKeepsTheHitRateAcrossGroups) {
  std::vector<sim::SimRequest> requests;
  std::vector<std::vector<int32_t>> conversations(8);
  for (int turn = 0; turn < 6; ++turn) {
    for (size_t position = 0; position < conversations.size(); ++position) {
      const size_t c = (position + 3 * static_cast<size_t>(turn)) % conversations.size();
      for (int i = 0; i < 16; ++i) conversations[c].push_back(static_cast<int32_t>(1000 * (c + 1) + turn * 16 + i));
      requests.push_back({.arrival_s = turn * 1.0 + static_cast<double>(position) * 0.01,
                          .prompt_tokens = static_cast<int32_t>(conversations[c].size()), .output_tokens = 2,
                          .max_tokens = 2, .prompt_ids = conversations[c]});
    }
  }
  const auto prefix = sim::simulate(prefix_config(true, 4), on_demand(), requests);
  const auto least = sim::simulate(prefix_config(true, 4), on_demand(router::Placement::kLeastLoaded), requests);
  const auto one = sim::simulate(prefix_config(true, 1), on_demand(), requests);
  ASSERT_TRUE(prefix.ok() && least.ok() && one.ok());
  ASSERT_GT(one->prefix_cache_hits, 0);
  EXPECT_EQ(prefix->prefix_cache_hits, one->prefix_cache_hits) << "every turn finds its conversation's group";
  EXPECT_LT(least->prefix_cache_hits, prefix->prefix_cache_hits);
}

}  // namespace
}  // namespace strata
