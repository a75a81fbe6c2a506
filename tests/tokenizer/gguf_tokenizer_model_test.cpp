// The GGUF `llama` tokenizer against `sentencepiece`: make_gguf_tokenizer_data.py converts
// the Llama 2 tokenizer.model (../shared) into GGUF arrays (pieces, scores, types) as
// llama.cpp's converter does and records sentencepiece's ids and decodes.
#include <gtest/gtest.h>

#include "common/tokenizer/tokenizer.h"
#include "tests/test_support.h"
#include "tests/tokenizer/tokenizer_test_util.h"

namespace strata {
namespace {

using testing::expect_streaming_over_cases;
using testing::must_load;
using testing::read_json;

TEST(GgufTokenizer, LlamaMatchesSentencepieceOnCorpus) {
  STRATA_REQUIRE_SHARED_FILE(model, "models/llama2-tokenizer/tokenizer.model");
  STRATA_REQUIRE_TEST_DATA(gguf_path, "gguf_tokenizer/llama.gguf");
  STRATA_REQUIRE_TEST_DATA(ref_path, "gguf_tokenizer/llama.cases.json");
  auto tok = must_load(gguf_path);
  ASSERT_TRUE(tok);
  const auto ref = read_json(ref_path);
  EXPECT_EQ(tok->kind(), "gguf-llama");
  EXPECT_EQ(tok->vocab_size(), ref["vocab_size"].get<int32_t>());
  EXPECT_EQ(tok->bos_id(), ref["bos"].get<int32_t>());
  EXPECT_EQ(tok->stop_ids(), std::vector<int32_t>{ref["eos"].get<int32_t>()});
  for (const auto& c : ref["cases"]) {
    const auto text = c["text"].get<std::string>();
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    const auto with_bos = c["ids_with_bos"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok->encode(text, false), ids) << text;
    EXPECT_EQ(tok->encode(text, true), with_bos) << text;
    EXPECT_EQ(tok->decode(ids, true), c["decoded"].get<std::string>()) << text;
    EXPECT_EQ(tok->decode(with_bos, true), c["decoded"].get<std::string>()) << text;
  }
  expect_streaming_over_cases(*tok, ref["cases"]);
}

// As llama.cpp (tokenizer_st_partition, then a "▁" prefix on the fragment after a special
// token): control tokens written in the text become their ids.
TEST(GgufTokenizer, LlamaControlTokensInTextBecomeTheirIds) {
  STRATA_REQUIRE_SHARED_FILE(model, "models/llama2-tokenizer/tokenizer.model");
  STRATA_REQUIRE_TEST_DATA(gguf_path, "gguf_tokenizer/llama.gguf");
  auto tok = must_load(gguf_path);
  ASSERT_TRUE(tok);
  std::vector<int32_t> expected = {1};
  for (int32_t id : tok->encode("Hello", false)) expected.push_back(id);
  expected.push_back(2);
  for (int32_t id : tok->encode("world", false)) expected.push_back(id);
  EXPECT_EQ(tok->encode("<s>Hello</s>world", false), expected);
  EXPECT_EQ(tok->decode(expected, true), "Hello world");
  EXPECT_EQ(tok->decode(expected, false), "<s> Hello</s> world");
}

// The GGUF tokenizer and the llama2.c tokenizer.bin of the same vocabulary share ScoreBpe;
// they must agree wherever llama2.c's conventions do not differ (no special tokens in text).
TEST(GgufTokenizer, LlamaAgreesWithLlama2cTokenizerBin) {
  STRATA_REQUIRE_SHARED_FILE(bin, "models/llama2-tokenizer/tokenizer.bin");
  STRATA_REQUIRE_TEST_DATA(gguf_path, "gguf_tokenizer/llama.gguf");
  STRATA_REQUIRE_TEST_DATA(ref_path, "gguf_tokenizer/llama.cases.json");
  auto gguf_tok = must_load(gguf_path);
  auto bin_tok = must_load(bin);
  ASSERT_TRUE(gguf_tok && bin_tok);
  // Held in a variable: a range-for over a member of a temporary reads freed memory (until C++23).
  const auto reference = read_json(ref_path);
  for (const auto& c : reference["cases"]) {
    const auto text = c["text"].get<std::string>();
    EXPECT_EQ(gguf_tok->encode(text, true), bin_tok->encode(text, true)) << text;
  }
}

}  // namespace
}  // namespace strata
