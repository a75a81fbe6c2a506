// Quality loss of --quantization w8a8 and w4a16 and of the int8 KV cache against the fp32
// forward of the same checkpoint, teacher-forced along the fp32 model's long greedy
// generation and along the published run.c generations (reference-greedy.json): per-position KL divergence, top-1
// agreement and perplexity (tools/bench/quality.h; bench_quality prints the same figures).
//
// Thresholds. W8A8 rounds weights per channel and activations per token to 8 bits (≈0.4%
// relative error each): on the trained 260K models it measures a mean KL of 3e-4 (aidreams)
// to 0.045 nats (stories260K, whose 64-wide rows make every activation outlier count) with
// 89–99% top-1 agreement, so mean KL < 0.1 nats, top-1 ≥ 85% and perplexity within 10%
// leave ~2× room while a wrong scale, a dropped row or a sign error gives KL > 1. W4A16
// (≈9% relative weight error at group 32) is held to KL < 0.05 and top-1 ≥ 90% on
// aidreams260K (measured 0.013, 94%). stories260K does not survive 4-bit weights at all
// (KL 1.7, the same when its int4 weights are dequantized into an fp32 forward, so it is
// the model's sensitivity, not the kernel); it is only required to stay a distribution
// (finite KL, perplexity below its vocabulary). The int8 KV cache (one fp16 scale per 64
// channels of a token's K or V head, ≈0.4% of the group's largest value) measures a mean
// KL of 0.0022 (stories260K, 97.7% top-1) and 2e-5 (aidreams260K, 99.2%): it is held to
// KL < 0.01, top-1 ≥ 95% and perplexity within 2%, and together with W8A8 or W4A16 to
// that scheme's own bounds.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/test_support.h"
#include "tools/bench/quality.h"

namespace strata {
namespace {

std::unique_ptr<LoadedModel> load(const std::string& path, const std::string& quantization) {
  ModelSettings settings{.model = path, .dtype = "fp32", .quantization = quantization};
  auto options = settings.load_options({}, 0.9);
  EXPECT_TRUE(options.ok()) << options.status().message();
  auto model = load_model(path, *options);
  EXPECT_TRUE(model.ok()) << model.status().message();
  return model.ok() ? std::move(*model) : nullptr;
}

struct Bound {
  double max_mean_kl, min_top1, max_perplexity_ratio;
};

// `scheme` as --quantization takes it, run with its KV cache in `kv_dtype`; the reference is
// the fp32 checkpoint with an fp32 cache.
void expect_within(const std::string& path, const std::vector<int32_t>& text,
                   const std::string& scheme, const Bound& bound, DType kv_dtype = DType::kF32) {
  SCOPED_TRACE(path + " " + scheme + " KV " + std::string(dtype_name(kv_dtype)));
  const auto reference = load(path, "none");
  const auto candidate = load(path, scheme);
  ASSERT_TRUE(reference && candidate);
  const auto ref_logits = bench::teacher_forced_logits(*reference, text);
  const auto logits = bench::teacher_forced_logits(*candidate, text, kv_dtype);
  ASSERT_TRUE(ref_logits.ok() && logits.ok());
  const bench::QualityReport r = bench::compare_logits(*ref_logits, *logits, text);
  EXPECT_EQ(r.positions, static_cast<int64_t>(text.size()) - 1);
  EXPECT_LT(r.mean_kl, bound.max_mean_kl);
  EXPECT_GE(r.top1_agreement, bound.min_top1);
  EXPECT_LT(r.candidate_perplexity, r.reference_perplexity * bound.max_perplexity_ratio);
}

std::vector<int32_t> greedy_text(const std::string& path, int64_t length) {
  const auto reference = load(path, "none");
  auto text = bench::greedy_tokens(*reference, {1}, length);
  EXPECT_TRUE(text.ok());
  return text.ok() ? *text : std::vector<int32_t>{};
}

// The published generations: prompt then output ids, as run.c produced them.
std::vector<std::pair<std::string, std::vector<int32_t>>> published_texts() {
  std::vector<std::pair<std::string, std::vector<int32_t>>> out;
  const auto file = testing::shared_dir() / "models" / "reference-greedy.json";
  const nlohmann::json cases = nlohmann::json::parse(std::ifstream(file))["cases"];
  for (const auto& c : cases) {
    std::vector<int32_t> ids = c["prompt_ids"].get<std::vector<int32_t>>();
    for (int32_t id : c["output_ids"].get<std::vector<int32_t>>()) ids.push_back(id);
    out.emplace_back((testing::shared_dir() / c["model"].get<std::string>()).string(), ids);
  }
  return out;
}

constexpr Bound kW8A8{0.1, 0.85, 1.1};
constexpr Bound kW4A16{0.05, 0.90, 1.1};
constexpr Bound kInt8Kv{0.01, 0.95, 1.02};

TEST(QuantizationQuality, W8A8StaysCloseToFp32OnTheTrainedModels) {
  STRATA_REQUIRE_SHARED_FILE(stories, "models/stories260K/stories260K.bin");
  STRATA_REQUIRE_SHARED_FILE(aidreams, "models/aidreams260K/aidreams260K.bin");
  expect_within(stories.string(), greedy_text(stories.string(), 512), "w8a8", kW8A8);
  expect_within(aidreams.string(), greedy_text(aidreams.string(), 128), "w8a8", kW8A8);
}

TEST(QuantizationQuality, BothSchemesStayCloseOnThePublishedGenerations) {
  STRATA_REQUIRE_SHARED_FILE(published, "models/reference-greedy.json");
  for (const auto& [path, text] : published_texts()) {
    expect_within(path, text, "w8a8", kW8A8);
    if (path.find("aidreams") != std::string::npos) expect_within(path, text, "w4a16", kW4A16);
  }
}

TEST(QuantizationQuality, W4A16StaysCloseOnAidreamsAndStaysADistributionOnStories) {
  STRATA_REQUIRE_SHARED_FILE(stories, "models/stories260K/stories260K.bin");
  STRATA_REQUIRE_SHARED_FILE(aidreams, "models/aidreams260K/aidreams260K.bin");
  expect_within(aidreams.string(), greedy_text(aidreams.string(), 128), "w4a16", kW4A16);
  const auto text = greedy_text(stories.string(), 256);
  const auto reference = load(stories.string(), "none");
  const auto candidate = load(stories.string(), "w4a16");
  const auto r = bench::compare_logits(*bench::teacher_forced_logits(*reference, text),
                                       *bench::teacher_forced_logits(*candidate, text), text);
  EXPECT_TRUE(std::isfinite(r.mean_kl));
  EXPECT_LT(r.candidate_perplexity, 512.0);  // better than uniform over the vocabulary
}

TEST(QuantizationQuality, Int8KvCacheAloneAndWithW8A8StaysCloseToFp32) {
  STRATA_REQUIRE_SHARED_FILE(stories, "models/stories260K/stories260K.bin");
  STRATA_REQUIRE_SHARED_FILE(aidreams, "models/aidreams260K/aidreams260K.bin");
  for (const auto& path : {stories.string(), aidreams.string()}) {
    const auto text = greedy_text(path, path == stories.string() ? 512 : 128);
    expect_within(path, text, "none", kInt8Kv, DType::kI8);
    expect_within(path, text, "w8a8", kW8A8, DType::kI8);
  }
  const auto text = greedy_text(aidreams.string(), 128);
  expect_within(aidreams.string(), text, "w4a16", kW4A16, DType::kI8);
}

// Random weights give flat distributions: the KL stays small, but near-ties make top-1
// agreement meaningless under int4 (measured 48%), so only the KL and perplexity are held
// there. The builtin shape still takes every matrix through the quantized kernels (k = 128
// and 384: all int4-able).
TEST(QuantizationQuality, BuiltinModelRunsEverySchemeCloseToFp32) {
  const std::vector<int32_t> text = greedy_text("builtin:tiny", 256);
  expect_within("builtin:tiny", text, "w8a8", kW8A8);
  expect_within("builtin:tiny", text, "w4a16", {0.05, 0.0, 1.3});
}

}  // namespace
}  // namespace strata
