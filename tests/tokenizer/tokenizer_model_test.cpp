// Tokenizers against their references: llama2.c tokenizer.bin and the converted Llama 2
// tokenizer.json against `sentencepiece`; trained tokenizer.json files against `tokenizers`.
#include <gtest/gtest.h>

#include "common/tokenizer/tokenizer.h"
#include "tests/test_support.h"
#include "tests/tokenizer/tokenizer_test_util.h"

namespace strata {
namespace {

using testing::expect_streaming_over_cases;
using testing::must_load;
using testing::read_json;

TEST(Llama2cTokenizer, MatchesSentencepieceOnMultilingualCorpus) {
  STRATA_REQUIRE_SHARED_FILE(bin, "models/llama2-tokenizer/tokenizer.bin");
  STRATA_REQUIRE_TEST_DATA(ref, "tokenizer/llama2_sentencepiece.json");
  auto tok = must_load(bin);
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->kind(), "llama2c");
  EXPECT_EQ(tok->vocab_size(), 32000);
  // Held in a variable: a range-for over a member of a temporary reads freed memory (until C++23).
  const auto reference = read_json(ref);
  for (const auto& c : reference["cases"]) {
    const auto text = c["text"].get<std::string>();
    std::vector<int32_t> expected = {1};
    for (const auto& id : c["ids"]) expected.push_back(id.get<int32_t>());
    const std::vector<int32_t> ids = tok->encode(text, true);
    EXPECT_EQ(ids, expected) << text;
    EXPECT_EQ(tok->decode(ids, true), c["decoded"].get<std::string>()) << text;
  }
  expect_streaming_over_cases(*tok, reference["cases"]);
}

TEST(HfTokenizer, ConvertedLlama2MatchesSentencepiece) {
  STRATA_REQUIRE_TEST_DATA(dir, "tokenizer/llama2_hf_legacy_true");
  STRATA_REQUIRE_TEST_DATA(ref, "tokenizer/llama2_sentencepiece.json");
  auto tok = must_load(dir);
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->kind(), "hf-bpe");
  EXPECT_EQ(tok->bos_id(), 1);
  // Held in a variable: a range-for over a member of a temporary reads freed memory (until C++23).
  const auto reference = read_json(ref);
  for (const auto& c : reference["cases"]) {
    const auto text = c["text"].get<std::string>();
    const auto expected = c["ids"].get<std::vector<int32_t>>();
    const std::vector<int32_t> ids = tok->encode(text, false);
    EXPECT_EQ(ids, expected) << text;
    EXPECT_EQ(tok->decode(ids, true), c["decoded"].get<std::string>()) << text;
  }
}

// Checks ids and decoded text against what the `tokenizers` package recorded.
void expect_matches_hf(const std::string& tokenizer_rel, const std::string& cases_rel,
                       const std::filesystem::path& tok_path, const std::filesystem::path& ref) {
  auto tok = must_load(tok_path);
  ASSERT_TRUE(tok) << tokenizer_rel;
  const auto cases = read_json(ref)["cases"];
  for (const auto& c : cases) {
    const auto text = c["text"].get<std::string>();
    const bool add_special = c.value("add_special_tokens", true);
    const auto expected = c["ids"].get<std::vector<int32_t>>();
    const std::vector<int32_t> ids = tok->encode(text, add_special);
    EXPECT_EQ(ids, expected) << cases_rel << ": " << text;
    if (c.contains("decoded_skip_special")) {
      EXPECT_EQ(tok->decode(expected, false), c["decoded"].get<std::string>()) << text;
      EXPECT_EQ(tok->decode(expected, true), c["decoded_skip_special"].get<std::string>()) << text;
    } else {
      EXPECT_EQ(tok->decode(expected, true), c["decoded"].get<std::string>()) << text;
    }
  }
  expect_streaming_over_cases(*tok, cases);
}

#define STRATA_HF_CASE(test_name, tokenizer_rel, cases_rel)            \
  TEST(HfTokenizer, test_name) {                                      \
    STRATA_REQUIRE_TEST_DATA(tok_path, tokenizer_rel);                \
    STRATA_REQUIRE_TEST_DATA(ref, cases_rel);                         \
    expect_matches_hf(tokenizer_rel, cases_rel, tok_path, ref);       \
  }

STRATA_HF_CASE(ConvertedLlama2LegacyMatchesTokenizers, "tokenizer/llama2_hf_legacy_true",
               "tokenizer/llama2_hf_legacy_true.json")
STRATA_HF_CASE(ConvertedLlama2MetaspaceMatchesTokenizers, "tokenizer/llama2_hf_legacy_false",
               "tokenizer/llama2_hf_legacy_false.json")
STRATA_HF_CASE(TrainedByteLevelMatchesTokenizers, "tokenizer/bytelevel.tokenizer.json",
               "tokenizer/bytelevel.cases.json")
STRATA_HF_CASE(TrainedLlama3SplitMatchesTokenizers, "tokenizer/llama3_split.tokenizer.json",
               "tokenizer/llama3_split.cases.json")
STRATA_HF_CASE(TrainedSentencepieceStyleMatchesTokenizers,
               "tokenizer/sentencepiece_style.tokenizer.json",
               "tokenizer/sentencepiece_style.cases.json")
STRATA_HF_CASE(TrainedMetaspaceDigitsMatchesTokenizers, "tokenizer/metaspace_digits.tokenizer.json",
               "tokenizer/metaspace_digits.cases.json")

}  // namespace
}  // namespace strata
