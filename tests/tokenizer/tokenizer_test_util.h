// Helpers the tokenizer tests share: reading reference JSON, loading a tokenizer, and
// checking that streaming (IncrementalDecoder) gives exactly what a full decode gives.
#pragma once

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/tokenizer/tokenizer.h"

namespace strata::testing {

inline nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

inline std::unique_ptr<Tokenizer> must_load(const std::filesystem::path& path) {
  auto tok = load_tokenizer(path.string());
  EXPECT_TRUE(tok.ok()) << tok.status().to_string();
  return tok.ok() ? std::move(*tok) : nullptr;
}

// Streaming every id after `context` must give exactly the suffix a full decode gives.
inline void expect_streaming_matches(const Tokenizer& tok, const std::vector<int32_t>& context,
                                     const std::vector<int32_t>& out, bool skip_special) {
  std::vector<int32_t> all = context;
  all.insert(all.end(), out.begin(), out.end());
  const std::string full = tok.decode(all, skip_special);
  const std::string head = tok.decode(context, skip_special);
  ASSERT_EQ(full.compare(0, head.size(), head), 0);
  IncrementalDecoder decoder(tok, context, skip_special);
  std::string streamed;
  for (int32_t id : out) streamed += decoder.push(id);
  streamed += decoder.flush();
  EXPECT_EQ(streamed, full.substr(head.size()));
}

inline void expect_streaming_over_cases(const Tokenizer& tok, const nlohmann::json& cases) {
  std::vector<int32_t> previous = tok.encode("Prompt:", true);
  for (const auto& c : cases) {
    const auto text = c["text"].get<std::string>();
    const std::vector<int32_t> ids = tok.encode(text, false);
    expect_streaming_matches(tok, previous, ids, true);
    expect_streaming_matches(tok, {}, ids, false);
  }
}

}  // namespace strata::testing
