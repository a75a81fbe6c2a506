// Tokenizer tests that need no files: the byte tokenizer, incremental decoding over it, and
// the error messages for broken tokenizer files.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "common/tokenizer/byte_tokenizer.h"
#include "common/tokenizer/tokenizer.h"

namespace strata {
namespace {

std::filesystem::path temp_dir() {
  auto dir = std::filesystem::temp_directory_path() / ("strata_tok_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

TEST(ByteTokenizer, EncodesBytesAfterBos) {
  auto tok = make_byte_tokenizer();
  EXPECT_EQ(tok->encode("A\xC3\xA9", true), (std::vector<int32_t>{1, 65 + 3, 0xC3 + 3, 0xA9 + 3}));
  EXPECT_EQ(tok->encode("", false), std::vector<int32_t>{});
  EXPECT_EQ(tok->vocab_size(), 259);
  EXPECT_EQ(tok->stop_ids(), std::vector<int32_t>{2});
  EXPECT_EQ(tok->kind(), "byte");
}

TEST(ByteTokenizer, DecodesSpecialsAndWrapsLargeIds) {
  auto tok = make_byte_tokenizer();
  const std::vector<int32_t> ids = {1, 68, 256 + 68, 2};  // 324 wraps to byte 65
  EXPECT_EQ(tok->decode(ids, true), "AA");
  EXPECT_EQ(tok->decode(ids, false), "<s>AA</s>");
  auto loaded = load_tokenizer("builtin:bytes");
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ((*loaded)->kind(), "byte");
}

TEST(IncrementalDecoder, ByteTokenizerNeverSplitsCharacters) {
  auto tok = make_byte_tokenizer();
  const std::vector<int32_t> context = tok->encode("Prompt: ", true);
  const std::vector<int32_t> out = tok->encode("héllo 😀 世界", false);
  IncrementalDecoder decoder(*tok, context);
  std::string streamed;
  for (int32_t id : out) {
    std::string piece = decoder.push(id);
    EXPECT_FALSE(piece.size() == 1 && (static_cast<uint8_t>(piece[0]) & 0x80)) << "split a char";
    streamed += piece;
  }
  streamed += decoder.flush();
  EXPECT_EQ(streamed, "héllo 😀 世界");
}

TEST(IncrementalDecoder, FlushEmitsIncompleteTail) {
  auto tok = make_byte_tokenizer();
  IncrementalDecoder decoder(*tok, {});
  EXPECT_EQ(decoder.push(0xE4 + 3), "");
  EXPECT_EQ(decoder.flush(), "\xE4");
}

TEST(LoadTokenizer, TruncatedLlama2cFileNamesFileAndEntry) {
  const auto path = temp_dir() / "truncated.bin";
  {
    std::ofstream out(path, std::ios::binary);
    const int32_t max_len = 8;
    out.write(reinterpret_cast<const char*>(&max_len), 4);
    for (int i = 0; i < 4; ++i) {
      const float score = 0;
      const int32_t len = 1;
      out.write(reinterpret_cast<const char*>(&score), 4);
      out.write(reinterpret_cast<const char*>(&len), 4);
      out.write("a", 1);
    }
    const float score = 0;
    const int32_t len = 5;
    out.write(reinterpret_cast<const char*>(&score), 4);
    out.write(reinterpret_cast<const char*>(&len), 4);
    out.write("ab", 2);
  }
  auto tok = load_tokenizer(path.string());
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(tok.status().message().find(path.string()), std::string::npos);
  EXPECT_NE(tok.status().message().find("entry 4"), std::string::npos) << tok.status().message();
}

TEST(LoadTokenizer, MalformedJsonNamesFile) {
  const auto path = temp_dir() / "broken.json";
  std::ofstream(path) << "{\"model\": {\"type\": \"BPE\", ";
  auto tok = load_tokenizer(path.string());
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(tok.status().message().find(path.string()), std::string::npos);
}

TEST(LoadTokenizer, UnknownPreTokenizerNamesFieldPath) {
  const auto dir = temp_dir() / "unknown";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer.json")
      << R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
              {"type": "Digits", "individual_digits": true}, {"type": "Foo"}]}})";
  auto tok = load_tokenizer(dir.string());
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(tok.status().message().find("pre_tokenizer.pretokenizers[1].type \"Foo\""),
            std::string::npos)
      << tok.status().message();
  EXPECT_NE(tok.status().message().find("tokenizer.json"), std::string::npos);
}

TEST(LoadTokenizer, UnknownModelTypeIsUnimplemented) {
  const auto path = temp_dir() / "wordpiece.json";
  std::ofstream(path) << R"({"model": {"type": "WordPiece", "vocab": {}}})";
  auto tok = load_tokenizer(path.string());
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(tok.status().message().find("model.type \"WordPiece\""), std::string::npos);
}

// Ids that are not integers in range are refused by field path before any conversion (a 4e90
// vocab id was an out-of-range cast that UBSan caught under fuzz_tokenizer_file).
TEST(LoadTokenizer, TokenIdsOutOfRangeNameTheirField) {
  const struct {
    const char* json;
    const char* field;
  } cases[] = {
      {R"({"model": {"type": "BPE", "vocab": {"a": 4.3e90}, "merges": []}})", R"(model.vocab["a"])"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0.5}, "merges": []}})", R"(model.vocab["a"])"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 2147483647}, "merges": []}})", R"(model.vocab["a"])"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
           "added_tokens": [{"id": -3, "content": "<s>"}]})", "added_tokens[].id"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
           "post_processor": {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}],
             "special_tokens": {"<s>": {"ids": [1e12]}}}})", R"(post_processor.special_tokens["<s>"].ids)"},
  };
  int index = 0;
  for (const auto& c : cases) {
    const auto path = temp_dir() / ("bad_id_" + std::to_string(index++) + ".json");
    std::ofstream(path) << c.json;
    auto tok = load_tokenizer(path.string());
    ASSERT_FALSE(tok.ok()) << c.json;
    EXPECT_EQ(tok.status().code(), StatusCode::kInvalidArgument) << tok.status().message();
    EXPECT_NE(tok.status().message().find(std::string(c.field) + " must be a token id"), std::string::npos)
        << tok.status().message();
  }
}

}  // namespace
}  // namespace strata
