#include "router/request_features.h"

#include <gtest/gtest.h>

namespace strata::router {
namespace {

GenerationRequest chat(std::vector<ChatMessage> messages) {
  GenerationRequest r;
  r.route = Route::kChatCompletions;
  r.messages = std::move(messages);
  r.sampling.max_tokens = 64;
  return r;
}

TEST(RequestFeatures, CopiesTheRequestFieldsThePredictorKeysOn) {
  GenerationRequest r;
  r.route = Route::kCompletions;
  r.sampling.max_tokens = 99;
  r.user = "alice";
  const RequestFeatures f = request_features(r, 12);
  EXPECT_EQ(f.prompt_tokens, 12);
  EXPECT_EQ(f.max_tokens, 99);
  EXPECT_EQ(f.route, Route::kCompletions);
  EXPECT_EQ(f.user, "alice");
  EXPECT_FALSE(f.has_stop);
  EXPECT_EQ(f.template_hash, 0u);
  r.stop_strings = {"\n"};
  EXPECT_TRUE(request_features(r, 12).has_stop);
  r.stop_strings.clear();
  r.sampling.stop_token_ids = {7};
  EXPECT_TRUE(request_features(r, 12).has_stop);
}

TEST(RequestFeatures, TemplateHashFollowsTheSystemPromptOnly) {
  const auto a = request_features(chat({{"system", "You are terse."}, {"user", "hi"}}), 5);
  const auto b = request_features(chat({{"system", "You are terse."}, {"user", "a longer question"}}), 9);
  const auto c = request_features(chat({{"system", "You are verbose."}, {"user", "hi"}}), 5);
  const auto d = request_features(chat({{"developer", "You are terse."}, {"user", "hi"}}), 5);
  const auto none = request_features(chat({{"user", "hi"}}), 5);
  EXPECT_NE(a.template_hash, 0u);
  EXPECT_EQ(a.template_hash, b.template_hash);  // same system prompt, other user turn
  EXPECT_NE(a.template_hash, c.template_hash);
  EXPECT_NE(a.template_hash, d.template_hash);  // the role is part of it
  EXPECT_EQ(none.template_hash, 0u);
  // Message boundaries count: "ab" + "c" is not "a" + "bc".
  const auto split1 = request_features(chat({{"system", "ab"}, {"system", "c"}}), 1);
  const auto split2 = request_features(chat({{"system", "a"}, {"system", "bc"}}), 1);
  EXPECT_NE(split1.template_hash, split2.template_hash);
}

}  // namespace
}  // namespace strata::router
