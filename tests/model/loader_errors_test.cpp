// Broken model files end in one clear message naming the file and the tensor or field —
// never a crash or a silently wrong model.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/model/random_llama.h"
#include "worker/model/builtin_models.h"
#include "worker/model/model_loader.h"

namespace strata {
namespace {

namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("strata_loader_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string load_error(const fs::path& path) {
  auto loaded = load_model(path.string());
  EXPECT_FALSE(loaded.ok()) << path;
  return loaded.ok() ? "" : loaded.status().message();
}

// A minimal safetensors writer (header JSON + zeroed data), enough to shape broken files.
void write_safetensors(const fs::path& path,
                       const std::vector<std::pair<std::string, std::vector<int64_t>>>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  size_t offset = 0;
  for (const auto& [name, shape] : tensors) {
    size_t n = 4;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    header[name] = {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  const std::string text = header.dump();
  const uint64_t len = text.size();
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&len), 8);
  out << text << std::string(offset, '\0');
}

const nlohmann::json kTinyConfig = {
    {"model_type", "llama"}, {"hidden_size", 8}, {"intermediate_size", 16},
    {"num_hidden_layers", 1}, {"num_attention_heads", 2}, {"num_key_value_heads", 1},
    {"vocab_size", 10}, {"max_position_embeddings", 32}, {"tie_word_embeddings", true}};

std::vector<std::pair<std::string, std::vector<int64_t>>> tiny_tensors() {
  const std::string p = "model.layers.0.";
  return {{"model.embed_tokens.weight", {10, 8}}, {p + "input_layernorm.weight", {8}},
          {p + "self_attn.q_proj.weight", {8, 8}}, {p + "self_attn.k_proj.weight", {4, 8}},
          {p + "self_attn.v_proj.weight", {4, 8}}, {p + "self_attn.o_proj.weight", {8, 8}},
          {p + "post_attention_layernorm.weight", {8}}, {p + "mlp.gate_proj.weight", {16, 8}},
          {p + "mlp.up_proj.weight", {16, 8}}, {p + "mlp.down_proj.weight", {8, 16}},
          {"model.norm.weight", {8}}};
}

void write_hf(const fs::path& dir, const nlohmann::json& config,
              const std::vector<std::pair<std::string, std::vector<int64_t>>>& tensors) {
  std::ofstream(dir / "config.json") << config.dump();
  write_safetensors(dir / "model.safetensors", tensors);
}

TEST(LoaderErrors, WellFormedTinyHfDirectoryLoads) {
  const fs::path dir = fresh_dir("ok");
  write_hf(dir, kTinyConfig, tiny_tensors());
  auto loaded = load_model(dir.string());
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  EXPECT_EQ((*loaded)->config.num_kv_heads, 1);
}

TEST(LoaderErrors, MissingPathSaysWhatToGive) {
  const std::string msg = load_error("/nonexistent/model.bin");
  EXPECT_NE(msg.find("/nonexistent/model.bin"), std::string::npos) << msg;
}

TEST(LoaderErrors, TruncatedLlama2cFileNamesFileAndSizes) {
  const fs::path dir = fresh_dir("trunc");
  const auto model = testing::make_random_llama({16, 24, 1, 2, 2, 20, 8}, true, 1);
  testing::write_llama2c(model, (dir / "m.bin").string());
  fs::resize_file(dir / "m.bin", fs::file_size(dir / "m.bin") - 100);
  const std::string msg = load_error(dir / "m.bin");
  EXPECT_NE(msg.find("m.bin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST(LoaderErrors, ImpossibleLlama2cHeaderIsRejected) {
  const fs::path dir = fresh_dir("header");
  const int32_t header[7] = {16, 24, 1, 0, 2, 20, 8};  // zero heads
  std::ofstream(dir / "m.bin", std::ios::binary).write(reinterpret_cast<const char*>(header), sizeof header);
  const std::string msg = load_error(dir / "m.bin");
  EXPECT_NE(msg.find("num_attention_heads"), std::string::npos) << msg;
  EXPECT_NE(msg.find("m.bin"), std::string::npos) << msg;
}

// Every value within the per-field bound, yet the arrays they imply add up past int64 bytes
// (fuzz_llama2c found it; UBSan reported the signed overflow).
TEST(LoaderErrors, Llama2cHeaderImplyingMoreThanInt64BytesIsRejected) {
  const fs::path dir = fresh_dir("huge");
  const int32_t header[7] = {1 << 20, 1 << 20, 1 << 20, 1 << 16, 1 << 16, -(1 << 20), 1 << 20};
  std::ofstream(dir / "m.bin", std::ios::binary).write(reinterpret_cast<const char*>(header), sizeof header);
  const std::string msg = load_error(dir / "m.bin");
  EXPECT_NE(msg.find("truncated or not a llama2.c"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("implies -"), std::string::npos) << msg;
}

TEST(LoaderErrors, TinyFileShorterThanHeader) {
  const fs::path dir = fresh_dir("short");
  std::ofstream(dir / "m.bin") << "abc";
  EXPECT_NE(load_error(dir / "m.bin").find("too short"), std::string::npos);
}

TEST(LoaderErrors, MissingTensorIsNamed) {
  const fs::path dir = fresh_dir("missing");
  auto tensors = tiny_tensors();
  tensors.erase(tensors.begin() + 8);  // up_proj
  write_hf(dir, kTinyConfig, tensors);
  const std::string msg = load_error(dir);
  EXPECT_NE(msg.find("model.layers.0.mlp.up_proj.weight"), std::string::npos) << msg;
}

TEST(LoaderErrors, WrongShapeNamesTensorAndBothShapes) {
  const fs::path dir = fresh_dir("shape");
  auto tensors = tiny_tensors();
  tensors[3].second = {8, 8};  // k_proj as if there were 2 KV heads
  write_hf(dir, kTinyConfig, tensors);
  const std::string msg = load_error(dir);
  EXPECT_NE(msg.find("model.layers.0.self_attn.k_proj.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[8, 8]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[4, 8]"), std::string::npos) << msg;
}

TEST(LoaderErrors, ConfigFieldErrorsNameFileAndField) {
  const fs::path dir = fresh_dir("config");
  write_safetensors(dir / "model.safetensors", tiny_tensors());
  auto config = kTinyConfig;
  config.erase("hidden_size");
  std::ofstream(dir / "config.json") << config.dump();
  std::string msg = load_error(dir);
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("hidden_size"), std::string::npos) << msg;

  config = kTinyConfig;
  config["num_key_value_heads"] = "two";
  std::ofstream(dir / "config.json") << config.dump();
  msg = load_error(dir);
  EXPECT_NE(msg.find("num_key_value_heads"), std::string::npos) << msg;

  config = kTinyConfig;
  config["num_key_value_heads"] = 3;  // 2 heads cannot share 3 KV heads
  std::ofstream(dir / "config.json") << config.dump();
  msg = load_error(dir);
  EXPECT_NE(msg.find("num_key_value_heads"), std::string::npos) << msg;

  config = kTinyConfig;
  config["model_type"] = "gpt2";
  std::ofstream(dir / "config.json") << config.dump();
  msg = load_error(dir);
  EXPECT_NE(msg.find("gpt2"), std::string::npos) << msg;

  std::ofstream(dir / "config.json") << "{\"hidden_size\": ";
  msg = load_error(dir);
  EXPECT_NE(msg.find("not valid JSON"), std::string::npos) << msg;
}

TEST(LoaderErrors, UntiedModelWithoutLmHeadIsExplained) {
  const fs::path dir = fresh_dir("lmhead");
  auto config = kTinyConfig;
  config["tie_word_embeddings"] = false;
  write_hf(dir, config, tiny_tensors());
  const std::string msg = load_error(dir);
  EXPECT_NE(msg.find("lm_head.weight"), std::string::npos) << msg;
}

TEST(BuiltinModels, UnknownNameListsPresets) {
  auto loaded = load_model("builtin:nope");
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("builtin:tiny"), std::string::npos);
}

TEST(BuiltinModels, WeightsAreDeterministicAndDtypeSelectable) {
  auto a = load_model("builtin:tiny"), b = load_model("builtin:tiny");
  ASSERT_TRUE(a.ok() && b.ok());
  const Tensor& wa = (*a)->weights.layers[1].w_down.data;
  const Tensor& wb = (*b)->weights.layers[1].w_down.data;
  ASSERT_EQ(wa.nbytes(), wb.nbytes());
  EXPECT_EQ(0, std::memcmp(wa.raw(), wb.raw(), wa.nbytes()));
  auto bf16 = load_model("builtin:tiny", {.dtype = DType::kBF16});
  ASSERT_TRUE(bf16.ok());
  EXPECT_EQ((*bf16)->weights.dtype, DType::kBF16);
  EXPECT_EQ((*bf16)->weights.layers[0].wqkv.data.dtype(), DType::kBF16);
  EXPECT_EQ((*bf16)->weights.layers[0].attn_norm.dtype(), DType::kF32);
  // bf16 weights are the fp32 ones rounded to nearest even.
  const float f = wa.data<float>()[123];
  EXPECT_EQ((*bf16)->weights.layers[1].w_down.data.data<uint16_t>()[123], f32_to_bf16(f));
}

TEST(BuiltinModels, PresetShapesMatchTheirNamesakes) {
  const auto small = builtin_model_config("llama-110m");
  ASSERT_TRUE(small);
  EXPECT_EQ(small->hidden_size, 768);
  EXPECT_EQ(small->num_layers, 12);
  EXPECT_NEAR(static_cast<double>(small->num_parameters()), 110e6, 5e6);
  const auto big = builtin_model_config("llama-1b");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->num_kv_heads, 4);
  EXPECT_NEAR(static_cast<double>(big->num_parameters()), 1.1e9, 0.05e9);
}

}  // namespace
}  // namespace strata
