// GGUF files written by the `gguf` package (tests/model/make_gguf_fixtures.py) against the
// engine: the same weights as safetensors and llama2.c give identical logits; quantized
// tensors decode to gguf's own dequantized values; Q8_0 / Q4_0 matrices keep the file's
// blocks under W8A8 / W4A16; corrupt files are refused with the reason, never a crash.
#include <cstring>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kernels/dtype.h"
#include "tests/model/logits_runner.h"
#include "tests/test_support.h"
#include "worker/model/gguf_dequantize.h"
#include "worker/model/gguf_loader.h"

namespace strata {
namespace {

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

std::vector<float> read_f32(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<float> v(std::filesystem::file_size(path) / 4);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
  return v;
}

TEST(GgufDequantize, EveryBlockTypeDecodesToTheGgufPackagesValues) {
  STRATA_REQUIRE_TEST_DATA(file_path, "gguf/quant_types.gguf");
  auto file = gguf::GgufFile::open(file_path.string());
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  for (const char* type : {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"}) {
    SCOPED_TRACE(type);
    const gguf::TensorInfo* t = file->find_tensor(type);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(gguf::ggml_type_name(t->type), type);
    ASSERT_TRUE(can_dequantize(t->type));
    const std::vector<float> want = read_f32(file_path.parent_path() / (std::string(type) + ".f32"));
    ASSERT_EQ(static_cast<int64_t>(want.size()), t->numel());
    std::vector<float> got(want.size());
    dequantize_gguf(t->type, t->data, t->numel(), got.data());
    EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * 4), 0);
  }
}

class GgufSameWeightsTest : public ::testing::TestWithParam<std::string> {};

// The fixture's fp32 weights as GGUF and as safetensors: identical logits, and the float64
// reference's within fp32 rounding.
TEST_P(GgufSameWeightsTest, IdenticalLogitsToSafetensors) {
  STRATA_REQUIRE_TEST_DATA(gguf_path, "gguf/" + GetParam() + ".gguf");
  STRATA_REQUIRE_TEST_DATA(hf_dir, "models/" + GetParam());
  const auto expected = read_json(hf_dir / "expected.json");
  auto tokens = expected["tokens"].get<std::vector<int32_t>>();
  tokens.resize(32);
  auto from_gguf = load_or_fail(gguf_path), from_hf = load_or_fail(hf_dir);
  ASSERT_TRUE(from_gguf && from_hf);
  EXPECT_EQ(from_gguf->format, "gguf");
  EXPECT_EQ(from_gguf->weights.dtype, DType::kF32);
  EXPECT_EQ(from_gguf->config.tie_word_embeddings, from_hf->config.tie_word_embeddings);
  EXPECT_EQ(from_gguf->config.attention_bias, from_hf->config.attention_bias);
  const RunResult a = run_all_positions(*from_gguf, tokens), b = run_all_positions(*from_hf, tokens);
  if (GetParam() == "llama3_rope_scaling") {
    // llama.cpp stores Llama 3.1's scaling as per-pair divisors: the same frequencies up to
    // double rounding, so the logits agree with the reference, not bit for bit with HF's.
    for (size_t pos = 0; pos < tokens.size(); ++pos) {
      EXPECT_LT(relative_error(a.per_position[pos], expected["logits"][pos]), 1e-4) << pos;
    }
    return;
  }
  EXPECT_EQ(a.per_position, b.per_position);
  EXPECT_EQ(a.prefill_last, b.prefill_last);
}

INSTANTIATE_TEST_SUITE_P(Cases, GgufSameWeightsTest,
                         ::testing::Values("llama_gqa_untied", "qwen2_bias_tied", "llama3_rope_scaling"));

TEST(GgufVersusLlama2c, TrainedModelsGiveIdenticalLogits) {
  for (const std::string model : {"stories260K", "aidreams260K"}) {
    SCOPED_TRACE(model);
    STRATA_REQUIRE_SHARED_FILE(bin, "models/" + model + "/" + model + ".bin");
    STRATA_REQUIRE_TEST_DATA(gguf_path, "gguf/" + model + ".gguf");
    auto a = load_or_fail(gguf_path), b = load_or_fail(bin);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->config.num_kv_heads, b->config.num_kv_heads);
    const std::vector<int32_t> tokens = {1, 400, 31, 77, 290, 12, 5, 461, 300, 2, 45, 99};
    EXPECT_EQ(run_all_positions(*a, tokens).per_position, run_all_positions(*b, tokens).per_position);
  }
}

struct QuantCase {
  std::string file;           // under test-data/gguf, without .gguf
  Quantization auto_scheme;   // what --quantization auto picks
  DType auto_dtype;
  double auto_tolerance;      // of the logits under the auto scheme, relative to the max
};

class GgufQuantizedTest : public ::testing::TestWithParam<QuantCase> {};

// Widened to fp32, the file's quantized weights give the float64 reference's logits over
// gguf's dequantized values: every tensor type decodes right through the loader (q/k row
// order, fused matrices, tied heads included). Under `auto` they run in their own scheme.
TEST_P(GgufQuantizedTest, LogitsMatchTheReferenceOverDequantizedWeights) {
  const QuantCase& c = GetParam();
  STRATA_REQUIRE_TEST_DATA(path, "gguf/" + c.file + ".gguf");
  const auto expected = read_json(path.parent_path() / (c.file + ".json"));
  const auto tokens = expected["tokens"].get<std::vector<int32_t>>();
  auto widened = load_or_fail(path, DType::kF32, Quantization::kNone);
  ASSERT_TRUE(widened);
  const RunResult exact = run_all_positions(*widened, tokens);
  for (size_t pos = 0; pos < tokens.size(); ++pos) {
    EXPECT_LT(relative_error(exact.per_position[pos], expected["logits"][pos]), 1e-4) << pos;
  }
  auto native = load_or_fail(path);
  ASSERT_TRUE(native);
  EXPECT_EQ(native->weights.quantization, c.auto_scheme);
  EXPECT_EQ(native->weights.dtype, c.auto_dtype);
  const RunResult r = run_all_positions(*native, tokens);
  for (size_t pos = 0; pos < tokens.size(); ++pos) {
    EXPECT_LT(relative_error(r.per_position[pos], expected["logits"][pos]), c.auto_tolerance) << pos;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Types, GgufQuantizedTest,
    ::testing::Values(QuantCase{"qwen2_bias_tied_Q8_0", Quantization::kW8A8, DType::kBF16, 5e-2},
                      QuantCase{"llama3_rope_scaling_Q8_0", Quantization::kW8A8, DType::kBF16, 5e-2},
                      // Its tied head is fp32 in the file and int4 under W4A16: coarser.
                      QuantCase{"qwen2_bias_tied_Q4_0", Quantization::kW4A16, DType::kBF16, 0.15},
                      QuantCase{"llama3_rope_scaling_Q4_0", Quantization::kW4A16, DType::kBF16, 5e-2},
                      QuantCase{"llama_kquants_KQUANTS", Quantization::kNone, DType::kBF16, 5e-2}),
    [](const auto& info) { return info.param.file; });

// Row-major (as the CUDA backend reads them), a Q8_0 layer's q|k|v matrix under W8A8 holds
// the file's int8 values and fp16 scales exactly, and a Q4_0 one under W4A16 the file's
// blocks byte for byte: no second rounding.
TEST(GgufBlocks, Q8_0AndQ4_0MatricesKeepTheFilesBlocks) {
  for (const auto& [name, scheme] : {std::pair{"llama3_rope_scaling_Q8_0", Quantization::kW8A8},
                                     std::pair{"llama3_rope_scaling_Q4_0", Quantization::kW4A16}}) {
    SCOPED_TRACE(name);
    STRATA_REQUIRE_TEST_DATA(path, std::string("gguf/") + name + ".gguf");
    auto file = gguf::GgufFile::open(path.string());
    ASSERT_TRUE(file.ok()) << file.status().to_string();
    auto config = read_gguf_config(*file);
    ASSERT_TRUE(config.ok()) << config.status().to_string();
    auto source = make_gguf_weight_source(*file, *config);
    auto weights = build_model_weights(*config, *source, {.dtype = DType::kBF16, .quantization = scheme,
                                                          .pack_for = nullptr});
    ASSERT_TRUE(weights.ok()) << weights.status().to_string();
    const Matrix& wqkv = weights->layers[1].wqkv;
    ASSERT_EQ(wqkv.scheme, scheme);
    std::vector<uint8_t> file_blocks;
    for (const char* part : {"blk.1.attn_q.weight", "blk.1.attn_k.weight", "blk.1.attn_v.weight"}) {
      const gguf::TensorInfo* t = file->find_tensor(part);
      ASSERT_NE(t, nullptr);
      file_blocks.insert(file_blocks.end(), t->data, t->data + t->nbytes);
    }
    if (scheme == Quantization::kW4A16) {
      ASSERT_EQ(wqkv.data.nbytes(), file_blocks.size());
      EXPECT_EQ(std::memcmp(wqkv.data.raw(), file_blocks.data(), file_blocks.size()), 0);
      continue;
    }
    ASSERT_EQ(wqkv.w8a8_group, 32);
    const auto* q = static_cast<const int8_t*>(wqkv.data.raw());
    const float* scales = wqkv.scales.data<float>();
    for (size_t b = 0; b < file_blocks.size() / 34; ++b) {
      uint16_t d;
      std::memcpy(&d, &file_blocks[b * 34], 2);
      ASSERT_EQ(scales[b], f16_to_f32(d)) << "block " << b;
      ASSERT_EQ(std::memcmp(q + b * 32, &file_blocks[b * 34 + 2], 32), 0) << "block " << b;
    }
  }
}

// Every corrupt file of the fuzz corpus: refused by the reader with the file's name and the
// reason the manifest gives, and by load_model without a crash.
TEST(GgufCorruptFiles, EachIsRefusedWithItsReason) {
  STRATA_REQUIRE_TEST_DATA(dir, "gguf/corrupt");
  const auto manifest = read_json(dir / "manifest.json");
  ASSERT_GE(manifest.size(), 25u);
  for (const auto& [name, reason] : manifest.items()) {
    SCOPED_TRACE(name);
    const std::string path = (dir / name).string();
    auto file = gguf::GgufFile::open(path);
    const Status status = file.ok() ? load_model(path).status() : file.status();
    ASSERT_FALSE(status.ok());
    EXPECT_NE(status.message().find(path), std::string::npos) << status.message();
    EXPECT_NE(status.message().find(reason.get<std::string>()), std::string::npos) << status.message();
  }
}

}  // namespace
}  // namespace strata
