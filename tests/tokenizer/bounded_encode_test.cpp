// encode_up_to against the full encode of the same tokenizer: for every tokenizer kind
// strata loads (HF byte-level, llama-3 split, Metaspace and SentencePiece-style BPE, the
// llama2.c tokenizer, the byte tokenizer), on long multilingual texts with whitespace runs,
// it must say "over the limit" exactly when the full encode is, return the full encode's ids
// when within, and when over have read only a prefix (the point: a hopeless prompt costs in
// proportion to the limit). The full encodes are checked against `tokenizers` and
// `sentencepiece` by tokenizer_model_test.
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/tokenizer/bounded_encode.h"
#include "common/tokenizer/tokenizer.h"
#include "tests/test_support.h"
#include "tests/tokenizer/tokenizer_test_util.h"

namespace strata {
namespace {

std::vector<std::string> corpus_lines() {
  std::vector<std::string> lines;
  for (const char* name : {"multilingual.txt", "heldout.txt", "train.txt"}) {
    std::ifstream in(std::string(STRATA_SOURCE_DIR) + "/tests/tokenizer/corpus/" + name);
    for (std::string line; std::getline(in, line);) lines.push_back(line + "\n");
  }
  return lines;
}

// Random corpus lines, now and then joined by runs of spaces, tabs or blank lines.
std::string long_text(size_t bytes, uint32_t seed) {
  static const std::vector<std::string> lines = corpus_lines();
  std::mt19937 rng(seed);
  std::string text;
  while (text.size() < bytes) {
    text += lines[rng() % lines.size()];
    if (rng() % 8 == 0) text += std::string(1 + rng() % 40, " \t\n"[rng() % 3]);
  }
  return text;
}

void expect_agrees_with_full_encode(const Tokenizer& tok, const std::string& label) {
  for (uint32_t seed : {1u, 2u}) {
    const std::string text = long_text(40 << 10, seed);
    const std::vector<int32_t> full = tok.encode(text, true);
    ASSERT_GT(full.size(), 3000u) << label;
    for (const int64_t limit : {int64_t{1}, int64_t{100}, int64_t{1000}, static_cast<int64_t>(full.size()) - 1,
                                static_cast<int64_t>(full.size()), int64_t{1} << 20}) {
      const BoundedEncoding r = encode_up_to(tok, text, true, limit);
      const bool over = static_cast<int64_t>(full.size()) > limit;
      ASSERT_EQ(r.within, !over) << label << " seed " << seed << " limit " << limit << ": " << full.size() << " tokens";
      if (!over) {
        EXPECT_EQ(r.ids, full) << label << " limit " << limit;
        continue;
      }
      EXPECT_GT(static_cast<int64_t>(r.ids.size()), limit) << label;
      EXPECT_LE(r.ids.size(), full.size()) << label;
      if (limit <= 1000) {  // far over: only a prefix was read, a few times the limit in bytes
        EXPECT_LT(r.encoded_bytes, text.size() / 2) << label << " limit " << limit;
      }
    }
  }
}

TEST(BoundedEncode, AgreesWithTheFullEncodeForEveryHfTokenizerKind) {
  for (const char* rel : {"tokenizer/bytelevel.tokenizer.json", "tokenizer/llama3_split.tokenizer.json",
                          "tokenizer/metaspace_digits.tokenizer.json", "tokenizer/sentencepiece_style.tokenizer.json",
                          "tokenizer/llama2_hf_legacy_true", "tokenizer/llama2_hf_legacy_false"}) {
    STRATA_REQUIRE_TEST_DATA(path, rel);
    auto tok = testing::must_load(path);
    ASSERT_TRUE(tok);
    expect_agrees_with_full_encode(*tok, rel);
  }
}

TEST(BoundedEncode, AgreesWithTheFullEncodeForLlama2cAndBytes) {
  STRATA_REQUIRE_SHARED_FILE(bin, "models/llama2-tokenizer/tokenizer.bin");
  for (const std::string path : {bin.string(), std::string("builtin:bytes")}) {
    auto tok = testing::must_load(path);
    ASSERT_TRUE(tok);
    expect_agrees_with_full_encode(*tok, path);
  }
}

TEST(BoundedEncode, TextWithoutWordEndsIsEncodedWhole) {
  auto tok = testing::must_load("builtin:bytes");
  ASSERT_TRUE(tok);
  const std::string run(100 << 10, 'a');  // no place where a word ends
  const BoundedEncoding r = encode_up_to(*tok, run, false, 10);
  EXPECT_FALSE(r.within);
  EXPECT_EQ(r.ids.size(), run.size());
  EXPECT_EQ(r.encoded_bytes, run.size());
  const std::string spaces(100 << 10, ' ');  // collapses under normalizing tokenizers
  EXPECT_FALSE(encode_up_to(*tok, spaces, false, 10).within);
  EXPECT_TRUE(encode_up_to(*tok, "short text", false, 10).within);
}

}  // namespace
}  // namespace strata
