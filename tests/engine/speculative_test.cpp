// Speculative decoding on real and random models. Exactness: greedy requests give the very
// tokens they give without speculation, for every proposer, with requests arriving at random
// steps into a cache small enough to force preemption, and some aborted. Sampling: the
// rejection rule leaves each token's distribution unchanged, checked by chi-square tests
// against the exact distribution and against sampling without speculation.
#include <cmath>
#include <map>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "tests/model/random_llama.h"
#include "tests/test_support.h"
#include "worker/engine/engine.h"
#include "worker/engine/kv_capacity.h"
#include "worker/engine/speculative/speculative_config.h"
#include "worker/engine/speculative/ngram_proposer.h"

namespace strata {
namespace {

// The chi-square statistic's value that a correct sampler exceeds with probability 1e-4
// (Wilson–Hilferty: the cube root of chi²/df is close to normal).
double chi_square_critical(int df) {
  const double z = 3.719;  // the standard normal's 1 - 1e-4 quantile
  const double a = 2.0 / (9.0 * df);
  return df * std::pow(1.0 - a + z * std::sqrt(a), 3.0);
}

// Requests with repetitive prompts (so prompt lookup has something to find) and greedy or
// penalized-greedy settings; every third opts out of speculation.
std::vector<Request> make_requests(const ModelConfig& c, uint32_t seed, int count) {
  std::mt19937 rng(seed);
  std::vector<Request> requests;
  for (RequestId id = 1; id <= static_cast<RequestId>(count); ++id) {
    Request r{.id = id};
    const int block = 1 + static_cast<int>(rng() % 8);
    std::vector<int32_t> unit;
    for (int i = 0; i < block; ++i) unit.push_back(static_cast<int32_t>(3 + rng() % (c.vocab_size - 3)));
    r.prompt_ids.push_back(1);
    for (int n = 1 + static_cast<int>(rng() % 4); n > 0; --n) r.prompt_ids.insert(r.prompt_ids.end(), unit.begin(), unit.end());
    r.sampling.temperature = 0.0f;
    r.sampling.max_tokens = 1 + static_cast<int32_t>(rng() % 40);
    r.sampling.ignore_eos = id % 2 == 0;
    if (id % 5 == 0) r.sampling.repetition_penalty = 1.3f;  // the penalties see accepted drafts
    if (id % 7 == 0) r.sampling.frequency_penalty = 0.5f;
    r.sampling.speculative = id % 3 != 0;
    requests.push_back(std::move(r));
  }
  return requests;
}

struct BatchedRun {
  std::map<RequestId, std::vector<int32_t>> tokens;
  std::set<RequestId> aborted;
  SchedulerStats stats;
};

// The requests arrive a few at a time into a cache of 24 blocks of 4; with `abort_every`,
// every such request is aborted once it has 3 tokens.
BatchedRun run_batched(const LoadedModel& model, const std::vector<Request>& requests,
                       const std::string& method, const LoadedModel* draft, int abort_every = 0) {
  EngineConfig config;
  config.scheduler.max_num_batched_tokens = 32;
  config.scheduler.max_num_seqs = 8;
  config.scheduler.block_size = 4;
  config.scheduler.watermark = 0.0;
  config.scheduler.num_speculative_tokens = 3;
  config.scheduler.speculative_max_batch = 8;
  config.scheduler.speculative_governor = false;  // draft every step, whatever it costs here
  config.speculative.method = method;
  if (method == "draft") config.speculative.model = draft->config.name;
  config.kv_cache_bytes = kv_block_bytes(model, config) * 24;
  if (method == "draft") config.kv_cache_bytes += KvCache::bytes_per_block(draft->config, 4, draft->weights.dtype) * 24;
  auto created = Engine::create(model, config, nullptr, draft);
  EXPECT_TRUE(created.ok()) << created.status().to_string();
  if (!created.ok()) return {};
  Engine& engine = **created;
  std::mt19937 rng(11);
  BatchedRun run;
  size_t next = 0;
  for (int steps = 0; next < requests.size() || engine.has_unfinished(); ++steps) {
    while (next < requests.size() && rng() % 3 == 0) EXPECT_TRUE(engine.add_request(requests[next++]).ok());
    for (const SequenceOutput& o : engine.step()) {
      for (const SampledToken& t : o.new_tokens) run.tokens[o.id].push_back(t.id);
      if (abort_every > 0 && o.id % abort_every == 0 && run.tokens[o.id].size() >= 3 && !o.finished()) {
        EXPECT_TRUE(engine.abort(o.id));
        run.aborted.insert(o.id);
      }
    }
    EXPECT_LT(steps, 20000);
    if (steps >= 20000) break;
  }
  run.stats = engine.stats();
  EXPECT_EQ(run.stats.blocks.free + run.stats.blocks.cached, run.stats.blocks.total) << "a block is still held";
  return run;
}

void check_exact(const LoadedModel& model, const std::string& method, const LoadedModel* draft = nullptr) {
  SCOPED_TRACE(method);
  const std::vector<Request> requests = make_requests(model.config, 5, 24);
  const BatchedRun off = run_batched(model, requests, "none", nullptr);
  const BatchedRun on = run_batched(model, requests, method, draft);
  EXPECT_GT(on.stats.num_preemptions, 0) << "the cache was meant to force preemption";
  EXPECT_GT(on.stats.spec_draft_tokens, 0);
  EXPECT_GT(on.stats.spec_accepted_tokens, 0) << "no draft was ever accepted";
  for (const Request& r : requests) EXPECT_EQ(on.tokens.at(r.id), off.tokens.at(r.id)) << "request " << r.id;
  // Aborts mid-verification: the survivors are untouched, the aborted ones a prefix.
  const BatchedRun aborted = run_batched(model, requests, method, draft, 4);
  EXPECT_FALSE(aborted.aborted.empty());
  for (const Request& r : requests) {
    const std::vector<int32_t>& got = aborted.tokens.count(r.id) ? aborted.tokens.at(r.id) : std::vector<int32_t>{};
    const std::vector<int32_t>& want = off.tokens.at(r.id);
    if (aborted.aborted.count(r.id)) {
      ASSERT_LE(got.size(), want.size());
      EXPECT_TRUE(std::equal(got.begin(), got.end(), want.begin())) << "request " << r.id;
    } else {
      EXPECT_EQ(got, want) << "request " << r.id;
    }
  }
}

TEST(SpeculativeExactness, EveryMethodOnTrainedModels) {
  STRATA_REQUIRE_SHARED_FILE(stories, "models/stories260K/stories260K.bin");
  STRATA_REQUIRE_SHARED_FILE(aidreams, "models/aidreams260K/aidreams260K.bin");
  auto target = load_model(stories.string());
  auto draft = load_model(aidreams.string());  // a different model with the same vocabulary size
  ASSERT_TRUE(target.ok() && draft.ok());
  check_exact(**target, "ngram");
  check_exact(**target, "draft", draft->get());
  SpeculativeConfig self{.method = "self-quantized"};
  auto quantized = load_draft_model(self, stories.string(), {});
  ASSERT_TRUE(quantized.ok()) << quantized.status().to_string();
  check_exact(**target, "self-quantized", quantized->get());
}

TEST(SpeculativeExactness, EveryMethodOnARandomBf16Model) {
  const auto m = testing::make_random_llama({72, 172, 2, 6, 3, 97, 256}, false, 5);
  const auto path = (std::filesystem::temp_directory_path() / "strata_speculative.bin").string();
  testing::write_llama2c(m, path);
  auto target = load_model(path, {.dtype = DType::kBF16});
  ASSERT_TRUE(target.ok());
  check_exact(**target, "ngram");
  auto quantized = load_draft_model({.method = "self-quantized"}, path, {.dtype = DType::kBF16});
  ASSERT_TRUE(quantized.ok()) << quantized.status().to_string();
  check_exact(**target, "self-quantized", quantized->get());
}

TEST(SpeculativeConfigErrors, NameTheFlag) {
  auto model = load_model("builtin:tiny");
  ASSERT_TRUE(model.ok());
  EngineConfig config;
  config.speculative.method = "medusa";
  EXPECT_NE(Engine::create(**model, config).status().message().find("--speculative-method"), std::string::npos);
  config.speculative.method = "draft";
  EXPECT_NE(Engine::create(**model, config).status().message().find("--speculative-model"), std::string::npos);
  auto other_vocab = load_model("builtin:llama-110m", {.dtype = DType::kBF16});
  ASSERT_TRUE(other_vocab.ok());
  config.speculative.model = "builtin:llama-110m";
  const Status s = Engine::create(**model, config, nullptr, other_vocab->get()).status();
  EXPECT_NE(s.message().find("vocabulary"), std::string::npos) << s.to_string();
}

TEST(NgramProposer, ProposesWhatFollowedTheLatestEarlierMatch) {
  Sequence seq(Request{.id = 1, .prompt_ids = {5, 6, 7, 8, 9, 5, 6, 7, 1, 2, 5, 6}});
  // The last two tokens (5 6) occur at 0 and 5; the latest is 5, followed by 7 1 2.
  EXPECT_EQ(NgramProposer::lookup(seq, 1, 3, 3), (std::vector<int32_t>{7, 1, 2}));
  EXPECT_EQ(NgramProposer::lookup(seq, 1, 3, 10), (std::vector<int32_t>{7, 1, 2, 5, 6}));
  seq.output_ids = {4};  // ... 5 6 4: no earlier "6 4" nor "4"
  EXPECT_TRUE(NgramProposer::lookup(seq, 1, 3, 3).empty());
  EXPECT_TRUE(NgramProposer::lookup(Sequence(Request{.id = 2, .prompt_ids = {3}}), 1, 3, 3).empty());
}

// The exact distribution sample_token draws from, computed here in double from the definition
// (softmax at temperature T over the top k, cut to the top-p prefix).
std::vector<double> reference_distribution(const std::vector<float>& logits, float temperature, int top_k, float top_p) {
  std::vector<int> order(logits.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return logits[a] > logits[b]; });
  const size_t k = top_k > 0 ? static_cast<size_t>(top_k) : order.size();
  std::vector<double> p(logits.size(), 0.0);
  double total = 0;
  for (size_t r = 0; r < k; ++r) total += p[order[r]] = std::exp((logits[order[r]] - logits[order[0]]) / temperature);
  double kept = 0;
  size_t r = 0;
  for (; r < k && kept < top_p * total; ++r) kept += p[order[r]];
  for (size_t q = r; q < p.size(); ++q) p[order[q]] = 0;
  for (double& x : p) x /= kept;
  return p;
}

TEST(RejectionSampling, VerifiedTokensFollowTheTargetDistributionWhateverTheDraft) {
  const std::vector<float> logits = {1.0f, 2.5f, 0.3f, 2.0f, -1.0f, 1.7f, 0.0f, 2.4f};
  struct Case { float temperature; int top_k; float top_p; int draft; };
  for (const Case& c : {Case{1.0f, 0, 1.0f, 1}, Case{0.7f, 0, 1.0f, 4}, Case{1.3f, 5, 1.0f, 6},
                        Case{1.0f, 0, 0.8f, 3}, Case{1.0f, 0, 0.8f, 2}}) {
    SCOPED_TRACE(fmt::format("T={} top_k={} top_p={} draft={}", c.temperature, c.top_k, c.top_p, c.draft));
    const std::vector<double> p = reference_distribution(logits, c.temperature, c.top_k, c.top_p);
    SamplingParams params{.temperature = c.temperature, .top_k = c.top_k, .top_p = c.top_p};
    SamplerWorkspace ws;
    SamplerRng rng(99);
    const int n = 200000;
    std::vector<int> counts(logits.size(), 0);
    int accepted = 0;
    for (int i = 0; i < n; ++i) {
      const int32_t t = verify_draft_token(logits, params, {}, {}, c.draft, rng, ws).id;
      ++counts[static_cast<size_t>(t)];
      accepted += t == c.draft;
    }
    double chi2 = 0;
    int df = -1;
    for (size_t t = 0; t < p.size(); ++t) {
      if (p[t] == 0) {
        EXPECT_EQ(counts[t], 0) << "token " << t << " is outside the kept set";
        continue;
      }
      const double expected = n * p[t];
      chi2 += (counts[t] - expected) * (counts[t] - expected) / expected;
      ++df;
    }
    EXPECT_LT(chi2, chi_square_critical(df)) << "df " << df;
    // The draft is accepted exactly as often as the target would have picked it.
    EXPECT_NEAR(static_cast<double>(accepted) / n, p[static_cast<size_t>(c.draft)], 0.005);
  }
}

TEST(RejectionSampling, GreedyVerificationIsTheArgmaxAndDrawsNothing) {
  const std::vector<float> logits = {0.5f, 3.0f, 3.0f, -2.0f};
  SamplingParams greedy{.temperature = 0.0f};
  SamplerWorkspace ws;
  SamplerRng rng(1), untouched(1);
  EXPECT_EQ(verify_draft_token(logits, greedy, {}, {}, 2, rng, ws).id, 1);  // lowest id on ties
  EXPECT_EQ(verify_draft_token(logits, greedy, {}, {}, 1, rng, ws).id, 1);
  EXPECT_EQ(rng.next_u64(), untouched.next_u64());
}

// Sampled requests through the whole engine: the token at each of the first positions has the
// same distribution with self-quantized drafts as without (two-sample chi-square over seeds).
TEST(RejectionSampling, EngineOutputsKeepTheirDistributionUnderSpeculation) {
  STRATA_REQUIRE_SHARED_FILE(path, "models/aidreams260K/aidreams260K.bin");
  auto model = load_model(path.string());
  ASSERT_TRUE(model.ok());
  auto draft = load_draft_model({.method = "self-quantized"}, path.string(), {});
  ASSERT_TRUE(draft.ok());
  constexpr int kSamples = 3000, kPositions = 4;
  auto sample_all = [&](const std::string& method, uint64_t first_seed) {
    EngineConfig config;
    config.scheduler.max_num_seqs = 64;
    config.scheduler.max_num_batched_tokens = 1024;
    config.scheduler.speculative_max_batch = 64;
    config.scheduler.speculative_governor = false;
    config.scheduler.num_speculative_tokens = 3;
    config.speculative.method = method;
    config.kv_cache_bytes = kv_block_bytes(**model, config) * 1024;
    auto engine = Engine::create(**model, config, nullptr, draft->get());
    EXPECT_TRUE(engine.ok());
    for (int i = 0; i < kSamples; ++i) {
      Request r{.id = static_cast<RequestId>(i + 1), .prompt_ids = {1, 200, 31, 77, 400}};
      r.sampling = {.temperature = 0.9f, .top_p = 0.95f, .seed = first_seed + i, .max_tokens = kPositions, .ignore_eos = true};
      EXPECT_TRUE((*engine)->add_request(r).ok());
    }
    std::vector<std::map<int32_t, int>> counts(kPositions);
    while ((*engine)->has_unfinished()) {
      for (const SequenceOutput& o : (*engine)->step()) {
        // The step's tokens are the last of the request's num_output_tokens.
        size_t pos = static_cast<size_t>(o.num_output_tokens) - o.new_tokens.size();
        for (const SampledToken& t : o.new_tokens) ++counts[pos++][t.id];
      }
    }
    const SchedulerStats st = (*engine)->stats();
    if (method != "none") {
      EXPECT_GT(st.spec_accepted_tokens, kSamples / 2) << "drafts were meant to be accepted";
    }
    return counts;
  };
  const auto off = sample_all("none", 1);
  const auto on = sample_all("self-quantized", 1000000);  // independent seeds
  for (int pos = 1; pos < kPositions; ++pos) {  // position 0 comes from the prefill, never verified
    std::map<int32_t, std::pair<int, int>> joint;
    for (auto [t, n] : off[pos]) joint[t].first += n;
    for (auto [t, n] : on[pos]) joint[t].second += n;
    // Tokens rarer than 10 in both samples pool into one category.
    std::pair<int, int> rare{0, 0};
    double chi2 = 0;
    int df = -1;
    auto add = [&](std::pair<int, int> c) {
      const double total = c.first + c.second;
      const double e = total / 2;  // equal sample sizes
      chi2 += (c.first - e) * (c.first - e) / e + (c.second - e) * (c.second - e) / e;
      ++df;
    };
    for (auto [t, c] : joint) {
      if (c.first + c.second < 20) {
        rare.first += c.first, rare.second += c.second;
      } else {
        add(c);
      }
    }
    if (rare.first + rare.second > 0) add(rare);
    ASSERT_GT(df, 3) << "position " << pos << " is too peaked to test";
    EXPECT_LT(chi2, chi_square_critical(df)) << "position " << pos << ", df " << df;
  }
}

}  // namespace
}  // namespace strata
