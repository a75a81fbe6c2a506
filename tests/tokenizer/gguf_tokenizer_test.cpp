// GGUF `gpt2` tokenizers against `tokenizers`: small byte-level BPE tokenizers trained by
// make_gguf_tokenizer_data.py, one per pre-tokenizer name, whose vocab and merges it wrote
// into GGUF with the `gguf` package. Also: broken GGUF files give errors naming the key,
// and a GGUF model path finds its own tokenizer.
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "common/tokenizer/gguf_bpe_tokenizer.h"
#include "common/tokenizer/gguf_tokenizer.h"
#include "common/tokenizer/regex.h"
#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/tokenizer_discovery.h"
#include "tests/test_support.h"
#include "tests/tokenizer/tokenizer_test_util.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using testing::expect_streaming_over_cases;
using testing::must_load;
using testing::read_json;

// ids with and without BOS, decode with and without specials, and streaming, per case.
void expect_matches_reference(const fs::path& gguf_path, const fs::path& ref_path) {
  auto tok = must_load(gguf_path);
  ASSERT_TRUE(tok) << gguf_path;
  const auto ref = read_json(ref_path);
  EXPECT_EQ(tok->kind(), "gguf-gpt2");
  EXPECT_EQ(tok->vocab_size(), ref["vocab_size"].get<int32_t>());
  EXPECT_EQ(tok->bos_id(), ref["bos"].get<int32_t>());
  EXPECT_EQ(tok->stop_ids(), ref["stop_ids"].get<std::vector<int32_t>>());
  for (const auto& c : ref["cases"]) {
    const auto text = c["text"].get<std::string>();
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok->encode(text, false), ids) << gguf_path.filename() << ": " << text;
    EXPECT_EQ(tok->encode(text, true), c["ids_with_bos"].get<std::vector<int32_t>>()) << text;
    EXPECT_EQ(tok->decode(ids, false), c["decoded"].get<std::string>()) << text;
    EXPECT_EQ(tok->decode(ids, true), c["decoded_skip_special"].get<std::string>()) << text;
  }
  expect_streaming_over_cases(*tok, ref["cases"]);
}

#define STRATA_GGUF_BPE_CASE(test_name, stem)                                        \
  TEST(GgufTokenizer, test_name) {                                                  \
    STRATA_REQUIRE_TEST_DATA(gguf_path, "gguf_tokenizer/" stem ".gguf");            \
    STRATA_REQUIRE_TEST_DATA(ref_path, "gguf_tokenizer/" stem ".cases.json");       \
    expect_matches_reference(gguf_path, ref_path);                                  \
  }

STRATA_GGUF_BPE_CASE(Gpt2PreMatchesTokenizersByteLevel, "gpt2")
STRATA_GGUF_BPE_CASE(DefaultPreMatchesTokenizersSplitSequence, "default")
STRATA_GGUF_BPE_CASE(LlamaBpePreMatchesTokenizersLlama3Split, "llama_bpe")
STRATA_GGUF_BPE_CASE(Qwen2PreMatchesTokenizersQwen2Split, "qwen2")
STRATA_GGUF_BPE_CASE(SmaugBpePreMatchesTokenizersLlama3Split, "smaug_bpe")

// Every name llama.cpp knows has regexes PCRE2 compiles (only the tested ones run above).
TEST(GgufTokenizer, EveryKnownPreTokenizerCompiles) {
  const std::string names = gguf_tok::known_pre_tokenizer_names();
  size_t count = 0;
  for (size_t begin = 0; begin < names.size(); ++count) {
    size_t end = names.find(", ", begin);
    if (end == std::string::npos) end = names.size();
    const std::string name = names.substr(begin, end - begin);
    begin = end + 2;
    const auto spec = gguf_tok::find_pre_tokenizer(name);
    ASSERT_TRUE(spec) << name;
    EXPECT_FALSE(spec->regexes.empty()) << name;
    for (const std::string& regex : spec->regexes) {
      auto compiled = Regex::compile(regex);
      EXPECT_TRUE(compiled.ok()) << name << ": " << compiled.status().to_string();
    }
  }
  EXPECT_GE(count, 40u);
  EXPECT_FALSE(gguf_tok::find_pre_tokenizer("no-such-pre"));
}

TEST(GgufTokenizer, ChatTemplateMarkersBecomeSingleIds) {
  STRATA_REQUIRE_TEST_DATA(gguf_path, "gguf_tokenizer/qwen2.gguf");
  auto tok = must_load(gguf_path);
  ASSERT_TRUE(tok);
  const auto start = tok->piece_to_id("<|im_start|>"), end = tok->piece_to_id("<|im_end|>");
  ASSERT_TRUE(start && end);
  const std::vector<int32_t> ids = tok->encode("<|im_start|>user\nHi<|im_end|>", true);
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), *start);  // qwen2 adds no BOS
  EXPECT_EQ(ids.back(), *end);
  EXPECT_EQ(tok->decode(ids, true), "user\nHi");
}

TEST(GgufTokenizer, BrokenFilesGiveErrorsNamingTheKey) {
  STRATA_REQUIRE_TEST_DATA(ref_path, "gguf_tokenizer/errors.json");
  // Held in a variable: a range-for over a member of a temporary reads freed memory (until C++23).
  const auto reference = read_json(ref_path);
  for (const auto& c : reference["cases"]) {
    const fs::path path = ref_path.parent_path() / c["file"].get<std::string>();
    auto tok = load_tokenizer(path.string());
    ASSERT_FALSE(tok.ok()) << path;
    const std::string message = tok.status().to_string();
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    for (const auto& word : c["expect"]) {
      EXPECT_NE(message.find(word.get<std::string>()), std::string::npos)
          << path.filename() << ": \"" << word.get<std::string>() << "\" not in: " << message;
    }
  }
}

class GgufDiscovery : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("strata_gguf_tok_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(GgufDiscovery, GgufModelIsItsOwnTokenizerByNameOrMagic) {
  STRATA_REQUIRE_TEST_DATA(gguf_path, "gguf_tokenizer/gpt2.gguf");
  EXPECT_EQ(default_tokenizer_for_model(gguf_path.string()), gguf_path.string());
  // No .gguf extension: found by the "GGUF" magic, by discovery and by load_tokenizer.
  const fs::path renamed = dir_ / "weights.bin";
  fs::copy_file(gguf_path, renamed);
  EXPECT_EQ(default_tokenizer_for_model(renamed.string()), renamed.string());
  auto tok = must_load(renamed);
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->kind(), "gguf-gpt2");
}

TEST_F(GgufDiscovery, DirectoryWithOneGgufAndNoHfFilesUsesIt) {
  STRATA_REQUIRE_TEST_DATA(gguf_path, "gguf_tokenizer/gpt2.gguf");
  const fs::path model = dir_ / "model-q8_0.gguf";
  fs::copy_file(gguf_path, model);
  EXPECT_EQ(default_tokenizer_for_model(dir_.string()), model.string());
  fs::copy_file(gguf_path, dir_ / "other.gguf");
  EXPECT_EQ(default_tokenizer_for_model(dir_.string()), "");  // ambiguous
  fs::remove(dir_ / "other.gguf");
  std::ofstream(dir_ / "config.json") << "{}";
  EXPECT_EQ(default_tokenizer_for_model(dir_.string()), "");  // an HF directory
}

TEST(GgufTokenizer, LoadsFromAnOpenedFile) {
  STRATA_REQUIRE_TEST_DATA(gguf_path, "gguf_tokenizer/llama_bpe.gguf");
  auto file = gguf::GgufFile::open(gguf_path.string());
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  auto tok = load_gguf_tokenizer(*file);
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  EXPECT_EQ((*tok)->encode("", true), std::vector<int32_t>{*(*tok)->bos_id()});
  EXPECT_EQ((*tok)->encode("", false), std::vector<int32_t>{});
}

}  // namespace
}  // namespace strata
