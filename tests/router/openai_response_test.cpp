// Response formatting: every body is parsed back and checked field by field against the
// shapes in OpenAI's API reference (and vLLM's return_token_ids extension).
#include "router/openai_response.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace strata::router {
namespace {

using nlohmann::json;

ResponseContext context(Route route) {
  return ResponseContext{.route = route,
                         .id = route == Route::kCompletions ? "cmpl-abc" : "chatcmpl-abc",
                         .created = 1700000000,
                         .model = "strata-test",
                         .logprobs = false,
                         .return_token_ids = false,
                         .include_usage = false};
}

Choice finished_choice() {
  Choice c;
  c.index = 0;
  c.text = "Hi \xc3\xa9!";
  c.token_ids = {10, 11, 12};
  c.logprobs = {
      TokenLogprobs{.token_id = 10,
                    .token = "Hi",
                    .logprob = -0.5f,
                    .top = {TopLogprob{.token_id = 10, .token = "Hi", .logprob = -0.5f},
                            TopLogprob{.token_id = 99, .token = "Yo", .logprob = -1.5f}}},
      TokenLogprobs{.token_id = 11,
                    .token = " \xc3\xa9",
                    .logprob = -1.0f,
                    .top = {TopLogprob{.token_id = 11, .token = " \xc3\xa9", .logprob = -1.0f}}},
      TokenLogprobs{.token_id = 12, .token = "!", .logprob = -INFINITY, .top = {}}};
  c.finish_reason = "stop";
  return c;
}

void expect_header(const json& j, std::string_view object, std::string_view id) {
  EXPECT_EQ(j["id"], id);
  EXPECT_EQ(j["object"], object);
  EXPECT_EQ(j["created"], 1700000000);
  EXPECT_EQ(j["model"], "strata-test");
}

TEST(OpenAiResponseTest, CompletionResponseWithoutLogprobs) {
  const std::vector<Choice> choices = {finished_choice()};
  const json j = json::parse(completion_response(
      context(Route::kCompletions), choices, Usage{.prompt_tokens = 5, .completion_tokens = 3}));
  expect_header(j, "text_completion", "cmpl-abc");
  ASSERT_EQ(j["choices"].size(), 1u);
  const json& c = j["choices"][0];
  EXPECT_EQ(c["index"], 0);
  EXPECT_EQ(c["text"], "Hi \xc3\xa9!");
  EXPECT_TRUE(c["logprobs"].is_null());
  EXPECT_EQ(c["finish_reason"], "stop");
  EXPECT_FALSE(c.contains("token_ids"));
  EXPECT_EQ(j["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(j["usage"]["completion_tokens"], 3);
  EXPECT_EQ(j["usage"]["total_tokens"], 8);
  EXPECT_FALSE(j.contains("prompt_token_ids"));
}

TEST(OpenAiResponseTest, CompletionLogprobsAreParallelArrays) {
  ResponseContext ctx = context(Route::kCompletions);
  ctx.logprobs = true;
  ctx.return_token_ids = true;
  const std::vector<Choice> choices = {finished_choice()};
  const std::vector<int32_t> prompt_ids = {1, 2};
  const json j = json::parse(completion_response(ctx, choices, Usage{}, prompt_ids));
  const json& lp = j["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"], json({"Hi", " \xc3\xa9", "!"}));
  EXPECT_EQ(lp["token_logprobs"][0], -0.5);
  EXPECT_EQ(lp["token_logprobs"][2], -9999.0);  // -inf is not JSON
  ASSERT_EQ(lp["top_logprobs"].size(), 3u);
  EXPECT_EQ(lp["top_logprobs"][0], json({{"Hi", -0.5}, {"Yo", -1.5}}));
  EXPECT_TRUE(lp["top_logprobs"][2].is_null());
  EXPECT_EQ(lp["text_offset"], json({0, 2, 4}));  // " é" is two code points
  EXPECT_EQ(j["choices"][0]["token_ids"], json({10, 11, 12}));
  EXPECT_EQ(j["prompt_token_ids"], json({1, 2}));
}

TEST(OpenAiResponseTest, ChatResponseWithLogprobs) {
  ResponseContext ctx = context(Route::kChatCompletions);
  ctx.logprobs = true;
  const std::vector<Choice> choices = {finished_choice()};
  const json j =
      json::parse(chat_response(ctx, choices, Usage{.prompt_tokens = 1, .completion_tokens = 3}));
  expect_header(j, "chat.completion", "chatcmpl-abc");
  const json& c = j["choices"][0];
  EXPECT_EQ(c["index"], 0);
  EXPECT_EQ(c["message"]["role"], "assistant");
  EXPECT_EQ(c["message"]["content"], "Hi \xc3\xa9!");
  EXPECT_EQ(c["finish_reason"], "stop");
  const json& content = c["logprobs"]["content"];
  ASSERT_EQ(content.size(), 3u);
  EXPECT_EQ(content[0]["token"], "Hi");
  EXPECT_EQ(content[0]["logprob"], -0.5);
  EXPECT_EQ(content[0]["bytes"], json({72, 105}));
  ASSERT_EQ(content[0]["top_logprobs"].size(), 2u);
  EXPECT_EQ(content[0]["top_logprobs"][1]["token"], "Yo");
  EXPECT_EQ(content[0]["top_logprobs"][1]["logprob"], -1.5);
  EXPECT_EQ(content[0]["top_logprobs"][1]["bytes"], json({89, 111}));
  EXPECT_EQ(content[1]["bytes"], json({32, 0xC3, 0xA9}));
  EXPECT_EQ(content[2]["top_logprobs"], json::array());
  EXPECT_EQ(j["usage"]["total_tokens"], 4);
}

TEST(OpenAiResponseTest, NullFinishReasonAndInvalidUtf8AreSafe) {
  Choice c;
  c.index = 1;
  c.text = "bad \xff";
  const std::vector<Choice> choices = {c};
  const json j = json::parse(chat_response(context(Route::kChatCompletions), choices, Usage{}));
  EXPECT_TRUE(j["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(j["choices"][0]["message"]["content"], "bad \xef\xbf\xbd");
  EXPECT_EQ(j["choices"][0]["index"], 1);
}

TEST(OpenAiResponseTest, CompletionChunksContinueTextOffsets) {
  ResponseContext ctx = context(Route::kCompletions);
  ctx.logprobs = true;
  ctx.include_usage = true;
  ctx.return_token_ids = true;
  Choice delta;
  delta.index = 2;
  delta.text = " \xc3\xa9!";
  delta.token_ids = {11, 12};
  delta.logprobs = {finished_choice().logprobs[1], finished_choice().logprobs[2]};
  const std::vector<int32_t> prompt_ids = {7};
  const json j = json::parse(completion_chunk(ctx, delta, 2, prompt_ids));
  expect_header(j, "text_completion", "cmpl-abc");
  const json& c = j["choices"][0];
  EXPECT_EQ(c["index"], 2);
  EXPECT_EQ(c["text"], " \xc3\xa9!");
  EXPECT_TRUE(c["finish_reason"].is_null());
  EXPECT_EQ(c["logprobs"]["text_offset"], json({2, 4}));
  EXPECT_EQ(c["token_ids"], json({11, 12}));
  EXPECT_TRUE(j.contains("usage"));
  EXPECT_TRUE(j["usage"].is_null());
  EXPECT_EQ(j["prompt_token_ids"], json({7}));
}

TEST(OpenAiResponseTest, ChatChunkSequence) {
  const ResponseContext ctx = context(Route::kChatCompletions);
  const json first = json::parse(chat_first_chunk(ctx, 0));
  expect_header(first, "chat.completion.chunk", "chatcmpl-abc");
  EXPECT_EQ(first["choices"][0]["delta"], json({{"role", "assistant"}, {"content", ""}}));
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  EXPECT_TRUE(first["choices"][0]["logprobs"].is_null());
  EXPECT_FALSE(first.contains("usage"));

  Choice delta;
  delta.text = "Hel";
  const json middle = json::parse(chat_chunk(ctx, delta));
  EXPECT_EQ(middle["choices"][0]["delta"], json({{"content", "Hel"}}));
  EXPECT_TRUE(middle["choices"][0]["finish_reason"].is_null());

  Choice last;
  last.finish_reason = "length";
  const json final_chunk = json::parse(chat_chunk(ctx, last));
  EXPECT_EQ(final_chunk["choices"][0]["delta"], json::object());
  EXPECT_EQ(final_chunk["choices"][0]["finish_reason"], "length");

  const json usage =
      json::parse(usage_chunk(ctx, Usage{.prompt_tokens = 4, .completion_tokens = 2}));
  expect_header(usage, "chat.completion.chunk", "chatcmpl-abc");
  EXPECT_EQ(usage["choices"], json::array());
  EXPECT_EQ(usage["usage"]["total_tokens"], 6);
}

TEST(OpenAiResponseTest, SseFraming) {
  EXPECT_EQ(sse_event(R"({"a":1})"), "data: {\"a\":1}\n\n");
  EXPECT_EQ(sse_done(), "data: [DONE]\n\n");
}

TEST(OpenAiResponseTest, ResponseIdsAndContext) {
  const std::string a = make_response_id(Route::kCompletions);
  const std::string b = make_response_id(Route::kCompletions);
  EXPECT_TRUE(a.starts_with("cmpl-"));
  EXPECT_EQ(a.size(), 5u + 32u);
  EXPECT_NE(a, b);
  EXPECT_TRUE(make_response_id(Route::kChatCompletions).starts_with("chatcmpl-"));

  GenerationRequest req;
  req.route = Route::kChatCompletions;
  req.logprobs = true;
  req.stream = true;
  req.include_usage = true;
  const ResponseContext ctx = make_response_context(req, "m", 5);
  EXPECT_TRUE(ctx.id.starts_with("chatcmpl-"));
  EXPECT_EQ(ctx.model, "m");
  EXPECT_EQ(ctx.created, 5);
  EXPECT_TRUE(ctx.logprobs);
  EXPECT_TRUE(ctx.include_usage);
}

TEST(OpenAiResponseTest, ModelsTokenizeDetokenize) {
  const json models = json::parse(models_response("strata-test", 123, 2048));
  EXPECT_EQ(models["object"], "list");
  ASSERT_EQ(models["data"].size(), 1u);
  EXPECT_EQ(models["data"][0]["id"], "strata-test");
  EXPECT_EQ(models["data"][0]["object"], "model");
  EXPECT_EQ(models["data"][0]["created"], 123);
  EXPECT_EQ(models["data"][0]["owned_by"], "strata");
  EXPECT_EQ(models["data"][0]["max_model_len"], 2048);

  const std::vector<int32_t> ids = {1, 15043};
  const json tok = json::parse(tokenize_response(ids, 2048));
  EXPECT_EQ(tok["tokens"], json({1, 15043}));
  EXPECT_EQ(tok["count"], 2);
  EXPECT_EQ(tok["max_model_len"], 2048);

  const json detok = json::parse(detokenize_response("Hello \xe4\xb8"));
  EXPECT_EQ(detok["prompt"], "Hello \xef\xbf\xbd");
}

}  // namespace
}  // namespace strata::router
