// Request parsing: a table of malformed and hostile bodies for both routes, each with the
// expected HTTP status, `param` and a piece of the message; valid bodies parsed field by
// field; random corruptions of a valid body never crash or throw.
#include "router/openai_api.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

namespace strata::router {
namespace {

using nlohmann::json;

ApiLimits test_limits() {
  return ApiLimits{.max_model_len = 2048, .vocab_size = 32000, .served_model_name = "strata-test"};
}

constexpr Route kC = Route::kCompletions;
constexpr Route kChat = Route::kChatCompletions;
constexpr const char* kAnyParam = "<any>";

struct BadCase {
  Route route;
  std::string body;
  int status;
  std::string param;         // kAnyParam: not checked
  std::string message_part;  // must occur in the message
};

std::string nested(int depth) {
  return R"({"prompt": )" + std::string(depth, '[') + "1" + std::string(depth, ']') + "}";
}

std::string stops(int count) {
  std::string s = R"({"prompt": "x", "stop": [)";
  for (int i = 0; i < count; ++i) s += (i ? ",\"s" : "\"s") + std::to_string(i) + "\"";
  return s + "]}";
}

const std::vector<BadCase>& bad_cases() {
  static const std::vector<BadCase> cases = {
      // Not JSON, or not an object.
      {kC, "", 400, "", "not valid JSON"},
      {kC, "{", 400, "", "not valid JSON"},
      {kC, R"({"prompt": "hi")", 400, "", "line 1, column"},
      {kC, R"({"prompt": "hi",})", 400, "", "not valid JSON"},
      {kC, R"({"prompt": "hi"} trailing)", 400, "", "not valid JSON"},
      {kC, R"({prompt: "hi"})", 400, "", "not valid JSON"},
      {kC, R"({"prompt": 'hi'})", 400, "", "not valid JSON"},
      {kC, "[1, 2]", 400, "", "must be a JSON object"},
      {kC, R"("just a string")", 400, "", "must be a JSON object"},
      {kC, "null", 400, "", "must be a JSON object"},
      {kChat, "42", 400, "", "must be a JSON object"},
      {kC, R"({"prompt": NaN})", 400, "", "not valid JSON"},
      {kC, R"({"prompt": "x", "temperature": Infinity})", 400, "", "not valid JSON"},
      {kC, R"({"prompt": "x", "temperature": -Infinity})", 400, "", "not valid JSON"},
      {kC, R"({"prompt": "\ud800"})", 400, "", "not valid JSON"},
      {kC, nested(100), 400, kAnyParam, "levels deep"},
      {kC, std::string(200000, '['), 400, kAnyParam, "levels deep"},
      {kChat,
       R"({"messages": [{"role": "user", "content": )" + std::string(70, '[') +
           std::string(70, ']') + "}]}",
       400, kAnyParam, "more than 64 levels deep (at `messages[0].content[0][0]"},
      // Huge numbers.
      {kC, R"({"prompt": "x", "temperature": 1e309})", 400, "temperature", "too large a number"},
      {kC, R"({"prompt": "x", "max_tokens": -1e400})", 400, "max_tokens", "too large a number"},
      {kC, R"({"prompt": "x", "max_tokens": 1180591620717411303424})", 400, "max_tokens",
       "must be in [1, 2147483647]"},
      {kC, R"({"prompt": "x", "n": 1180591620717411303424})", 400, "n", "must be in [1, 16]"},
      {kC, R"({"prompt": "x", "repetition_penalty": 1e300})", 400, "repetition_penalty",
       "out of range"},
      {kC, R"({"prompt": "x", "temperature": -1e308})", 400, "temperature", "out of range"},
      // max_tokens.
      {kC, R"({"prompt": "x", "max_tokens": "ten"})", 400, "max_tokens",
       "`max_tokens` must be an integer. Given: \"ten\""},
      {kC, R"({"prompt": "x", "max_tokens": -5})", 400, "max_tokens", "Given: -5"},
      {kC, R"({"prompt": "x", "max_tokens": 0})", 400, "max_tokens", "must be in [1, 2147483647]"},
      {kC, R"({"prompt": "x", "max_tokens": 2147483648})", 400, "max_tokens", "Given: 2147483648"},
      {kC, R"({"prompt": "x", "max_tokens": 10.5})", 400, "max_tokens", "must be an integer"},
      {kC, R"({"prompt": "x", "max_tokens": true})", 400, "max_tokens", "must be an integer"},
      {kC, R"({"prompt": "x", "max_tokens": [10]})", 400, "max_tokens", "Given: [10]"},
      {kChat, R"({"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 0})",
       400, "max_completion_tokens", "must be in [1, 2147483647]"},
      // n.
      {kC, R"({"prompt": "x", "n": 0})", 400, "n", "`n` must be in [1, 16]. Given: 0"},
      {kC, R"({"prompt": "x", "n": 17})", 400, "n", "Given: 17"},
      {kChat, R"({"messages": [{"role": "user", "content": "x"}], "n": 17})", 400, "n", "[1, 16]"},
      // Sampling ranges.
      {kC, R"({"prompt": "x", "temperature": 2.5})", 400, "temperature", "must be in [0, 2]"},
      {kC, R"({"prompt": "x", "temperature": -0.1})", 400, "temperature", "must be in [0, 2]"},
      {kC, R"({"prompt": "x", "temperature": "hot"})", 400, "temperature", "must be a number"},
      {kC, R"({"prompt": "x", "top_p": 0})", 400, "top_p", "must be in (0, 1]"},
      {kC, R"({"prompt": "x", "top_p": 1.5})", 400, "top_p", "Given: 1.5"},
      {kC, R"({"prompt": "x", "top_k": -2})", 400, "top_k", "must be in [-1, "},
      {kC, R"({"prompt": "x", "top_k": 1.5})", 400, "top_k", "must be an integer"},
      {kC, R"({"prompt": "x", "min_p": 1.5})", 400, "min_p", "must be in [0, 1]"},
      {kC, R"({"prompt": "x", "presence_penalty": 3})", 400, "presence_penalty", "[-2, 2]"},
      {kC, R"({"prompt": "x", "frequency_penalty": -2.5})", 400, "frequency_penalty", "[-2, 2]"},
      {kC, R"({"prompt": "x", "repetition_penalty": 0})", 400, "repetition_penalty", "(0, 2]"},
      {kC, R"({"prompt": "x", "seed": -1})", 400, "seed", "must be in [0, 9223372036854775808]"},
      {kC, R"({"prompt": "x", "seed": 1.5})", 400, "seed", "must be an integer"},
      {kC, R"({"prompt": "x", "seed": 9223372036854775809})", 400, "seed", "Given:"},
      {kC, R"({"prompt": "x", "seed": "abc"})", 400, "seed", "must be an integer"},
      {kC, R"({"prompt": "x", "ignore_eos": "no"})", 400, "ignore_eos", "must be a boolean"},
      {kC, R"({"prompt": "x", "stop_after_tokens": 0})", 400, "stop_after_tokens", "must be in [1, "},
      {kC, R"({"prompt": "x", "priority": 1.5})", 400, "priority", "must be an integer"},
      {kC, R"({"prompt": "x", "priority": 2000000})", 400, "priority", "must be in [-1000000, 1000000]"},
      {kC, R"({"prompt": "x", "timeout": 0})", 400, "timeout", "must be in (0, 86400] seconds"},
      {kC, R"({"prompt": "x", "timeout": "soon"})", 400, "timeout", "must be a number"},
      // Stop strings and ids.
      {kC, stops(17), 400, "stop", "at most 16 strings. Given: 17"},
      {kC, R"({"prompt": "x", "stop": ""})", 400, "stop", "must not be an empty string"},
      {kC, R"({"prompt": "x", "stop": ["a", ""]})", 400, "stop[1]", "must not be an empty"},
      {kC, R"({"prompt": "x", "stop": ["a", 5]})", 400, "stop[1]", "must be a string"},
      {kC, R"({"prompt": "x", "stop": 5})", 400, "stop", "a string or an array of strings"},
      {kC, R"({"prompt": "x", "stop": {"a": 1}})", 400, "stop", "Given: {\"a\":1}"},
      {kC, R"({"prompt": "x", "stop_token_ids": [-1]})", 400, "stop_token_ids[0]", "Given: -1"},
      {kC, R"({"prompt": "x", "stop_token_ids": [2, 32000]})", 400, "stop_token_ids[1]",
       "[0, 31999]"},
      {kC, R"({"prompt": "x", "stop_token_ids": 2})", 400, "stop_token_ids", "array"},
      // Logprobs.
      {kC, R"({"prompt": "x", "logprobs": 6})", 400, "logprobs", "must be in [0, 5]"},
      {kC, R"({"prompt": "x", "logprobs": true})", 400, "logprobs", "must be an integer"},
      {kC, R"({"prompt": "x", "logprobs": 1, "echo": true})", 400, "echo", "not supported"},
      {kChat, R"({"messages": [{"role": "user", "content": "x"}], "logprobs": 1})", 400, "logprobs",
       "must be a boolean"},
      {kChat,
       R"({"messages": [{"role": "user", "content": "x"}], "logprobs": true, )"
       R"("top_logprobs": 21})",
       400, "top_logprobs", "must be in [0, 20]"},
      {kChat, R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 5})", 400,
       "top_logprobs", "needs `logprobs`"},
      // Flags and streaming.
      {kC, R"({"prompt": "x", "echo": "yes"})", 400, "echo", "must be a boolean"},
      {kC, R"({"prompt": "x", "stream": 1})", 400, "stream", "must be a boolean"},
      {kC, R"({"prompt": "x", "stream_options": {"include_usage": true}})", 400, "stream_options",
       "only allowed when `stream` is true"},
      {kC, R"({"prompt": "x", "stream": true, "stream_options": {"include_usage": "yes"}})", 400,
       "stream_options.include_usage", "must be a boolean"},
      {kC, R"({"prompt": "x", "stream": true, "stream_options": [1]})", 400, "stream_options",
       "must be an object"},
      {kC, R"({"prompt": "x", "user": 5})", 400, "user", "must be a string"},
      {kC, R"({"prompt": "x", "return_token_ids": "true"})", 400, "return_token_ids",
       "must be a boolean"},
      // Unsupported known fields.
      {kC, R"({"prompt": "x", "logit_bias": {"50256": -100}})", 400, "logit_bias", "not supported"},
      {kC, R"({"prompt": "x", "best_of": 3})", 400, "best_of", "not supported"},
      {kC, R"({"prompt": "x", "n": 3, "best_of": 1})", 400, "best_of", "must be >= `n`. Given: 1 with n = 3"},
      {kC, R"({"prompt": "x", "suffix": "tail"})", 400, "suffix", "not supported"},
      {kChat,
       R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]})", 400,
       "tools[0].function", "must be an object"},
      {kChat,
       R"({"messages": [{"role": "user", "content": "x"}], )"
       R"("response_format": {"type": "json_object"}})",
       400, "response_format", "json_object"},
      // Prompts.
      {kC, R"({"max_tokens": 5})", 400, "prompt", "`prompt` is required"},
      {kC, R"({"prompt": null})", 400, "prompt", "`prompt` is required"},
      {kC, R"({"prompt": []})", 400, "prompt", "must not be empty"},
      {kC, R"({"prompt": [[]]})", 400, "prompt[0]", "must not be empty"},
      {kC, R"({"prompt": ["a", "b"]})", 400, "prompt",
       "batched prompts are not supported; send one prompt per request"},
      {kC, R"({"prompt": [[1, 2], [3]]})", 400, "prompt", "batched prompts are not supported"},
      {kC, R"({"prompt": [1, 32000]})", 400, "prompt[1]", "below the vocabulary size"},
      {kC, R"({"prompt": [1, -1]})", 400, "prompt[1]", "Given: -1"},
      {kC, R"({"prompt": [1, 2.5]})", 400, "prompt[1]", "must be an integer"},
      {kC, R"({"prompt": [[1, "x"]]})", 400, "prompt[0][1]", "must be an integer"},
      {kC, R"({"prompt": [1, "x"]})", 400, "prompt[1]", "must be an integer"},
      {kC, R"({"prompt": [true]})", 400, "prompt[0]", "must be an integer"},
      {kC, R"({"prompt": 5})", 400, "prompt", "must be a string"},
      {kC, R"({"prompt": {"text": "x"}})", 400, "prompt", "must be a string"},
      // Model.
      {kC, R"({"prompt": "x", "model": "gpt-4"})", 404, "model", "`gpt-4` does not exist"},
      {kChat, R"({"messages": [{"role": "user", "content": "x"}], "model": "llama"})", 404, "model",
       "does not exist"},
      {kC, R"({"prompt": "x", "model": 5})", 400, "model", "must be a string"},
      // Invalid UTF-8.
      {kC, "{\"prompt\": \"ab\xff\"}", 400, "prompt", "not valid UTF-8 (byte 0xff at offset 14)"},
      {kC, "{\"prompt\": \"x\", \"stop\": [\"ok\", \"\xc3\x28\"]}", 400, "stop[1]",
       "not valid UTF-8"},
      {kC, "{\"prompt\": \"\xed\xa0\x80\"}", 400, "prompt", "not valid UTF-8"},  // surrogate
      {kC, "{\"prompt\": \"\xf0\x9f\x98\"}", 400, "prompt", "not valid UTF-8"},  // truncated
      {kChat,
       "{\"messages\": [{\"role\": \"user\", \"content\": \"fine\"}, "
       "{\"role\": \"user\", \"content\": \"bad \xc0\xaf\"}]}",
       400, "messages[1].content", "not valid UTF-8"},
      {kChat, "{\"messages\": [{\"role\": \"user\", \"\xfe\": 1}]}", 400, "messages[0]",
       "not valid UTF-8"},
      {kC, "\xef\xbb\xbf\xff{}", 400, "", "not valid UTF-8"},
      // Chat messages.
      {kChat, R"({"model": "strata-test"})", 400, "messages", "`messages` is required"},
      {kChat, R"({"messages": null})", 400, "messages", "`messages` is required"},
      {kChat, R"({"messages": []})", 400, "messages", "must not be empty"},
      {kChat, R"({"messages": "hi"})", 400, "messages", "must be an array"},
      {kChat, R"({"messages": [5]})", 400, "messages[0]", "must be an object"},
      {kChat, R"({"messages": [{"content": "x"}]})", 400, "messages[0].role", "is required"},
      {kChat, R"({"messages": [{"role": "robot", "content": "x"}]})", 400, "messages[0].role",
       "must be one of"},
      {kChat, R"({"messages": [{"role": 5, "content": "x"}]})", 400, "messages[0].role",
       "Given: 5"},
      {kChat, R"({"messages": [{"role": "user"}]})", 400, "messages[0].content", "is required"},
      {kChat, R"({"messages": [{"role": "user", "content": 5}]})", 400, "messages[0].content",
       "a string or an array of text parts"},
      {kChat,
       R"({"messages": [{"role": "user", "content": [{"type": "image_url", )"
       R"("image_url": {"url": "http://x"}}]}]})",
       400, "messages[0].content[0].type", "must be \"text\""},
      {kChat, R"({"messages": [{"role": "user", "content": [{"type": "text"}]}]})", 400,
       "messages[0].content[0].text", "must be a string"},
      {kChat, R"({"messages": [{"role": "user", "content": ["x"]}]})", 400,
       "messages[0].content[0]", "must be an object"},
      {kChat,
       R"({"messages": [{"role": "user", "content": "a"}, {"role": "bot", )"
       R"("content": "b"}]})",
       400, "messages[1].role", "Given: \"bot\""},
  };
  return cases;
}

TEST(OpenAiApiTest, HostileBodiesAreAnsweredWithTheRightStatusParamAndMessage) {
  const ApiLimits limits = test_limits();
  ASSERT_GE(bad_cases().size(), 60u);
  for (size_t i = 0; i < bad_cases().size(); ++i) {
    const BadCase& c = bad_cases()[i];
    SCOPED_TRACE(::testing::Message() << "case " << i << ": " << c.body.substr(0, 120));
    auto result = parse_generation_request(c.body, c.route, limits);
    ASSERT_TRUE(std::holds_alternative<ApiError>(result)) << "accepted a bad body";
    const ApiError& e = std::get<ApiError>(result);
    EXPECT_EQ(e.http_status, c.status) << e.message;
    if (c.param != kAnyParam) {
      EXPECT_EQ(e.param, c.param) << e.message;
    }
    EXPECT_NE(e.message.find(c.message_part), std::string::npos)
        << "message: " << e.message << "\nexpected to contain: " << c.message_part;
    EXPECT_EQ(e.type, "invalid_request_error");
    if (c.status == 404) {
      EXPECT_EQ(e.code, "model_not_found");
    }
    // The error body is valid JSON whatever the message holds.
    EXPECT_TRUE(json::accept(error_body(e)));
  }
}

TEST(OpenAiApiTest, ParseErrorMessagesCarryThePosition) {
  auto result = parse_generation_request(R"({"prompt": "x",  "n": 1,, })", kC, test_limits());
  const ApiError& e = std::get<ApiError>(result);
  EXPECT_NE(e.message.find("column 25"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("byte offset"), std::string::npos) << e.message;
}

// The parsed request (by value: callers pass temporaries), or an empty one after a failure.
GenerationRequest ok(std::variant<GenerationRequest, ApiError> r) {
  if (auto* e = std::get_if<ApiError>(&r)) {
    ADD_FAILURE() << "rejected: " << e->message << " (param " << e->param << ")";
    return GenerationRequest{};
  }
  return std::get<GenerationRequest>(std::move(r));
}

// OpenAI and llama.cpp's server take an empty prompt and start from BOS.
TEST(OpenAiApiTest, EmptyTextPromptIsAccepted) {
  for (const char* body : {R"({"prompt": ""})", R"({"prompt": [""]})"}) {
    const GenerationRequest r = ok(parse_generation_request(body, kC, test_limits()));
    ASSERT_TRUE(r.prompt_text.has_value()) << body;
    EXPECT_EQ(*r.prompt_text, "") << body;
  }
}

TEST(OpenAiApiTest, FullCompletionsRequestIsParsedFieldByField) {
  const std::string body = R"({
    "model": "strata-test", "prompt": "Hello", "max_tokens": 10, "temperature": 0.5,
    "top_p": 0.9, "top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1,
    "presence_penalty": 0.5, "frequency_penalty": -0.5, "n": 2, "stop": ["\n", "END"],
    "stop_token_ids": [2, 7], "seed": 42, "logprobs": 3, "stream": true,
    "stream_options": {"include_usage": true}, "user": "u-1", "return_token_ids": true,
    "ignore_eos": true, "echo": false, "best_of": 2, "logit_bias": {},
    "stop_after_tokens": 7, "priority": -3, "timeout": 2.5,
    "unknown_field": {"nested": [1, 2, {"x": null}]}, "metadata": null, "suffix": null})";
  auto result = parse_generation_request(body, kC, test_limits());
  const GenerationRequest r = ok(result);
  EXPECT_EQ(r.route, kC);
  EXPECT_EQ(r.model, "strata-test");
  ASSERT_TRUE(r.prompt_text.has_value());
  EXPECT_EQ(*r.prompt_text, "Hello");
  EXPECT_FALSE(r.prompt_ids.has_value());
  EXPECT_TRUE(r.max_tokens_given);
  EXPECT_EQ(r.sampling.max_tokens, 10);
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 0.9f);
  EXPECT_EQ(r.sampling.top_k, 40);
  EXPECT_FLOAT_EQ(r.sampling.min_p, 0.05f);
  EXPECT_FLOAT_EQ(r.sampling.repetition_penalty, 1.1f);
  EXPECT_FLOAT_EQ(r.sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(r.sampling.frequency_penalty, -0.5f);
  EXPECT_EQ(r.n, 2);
  EXPECT_EQ(r.stop_strings, (std::vector<std::string>{"\n", "END"}));
  EXPECT_EQ(r.sampling.stop_token_ids, (std::vector<int32_t>{2, 7}));
  ASSERT_TRUE(r.sampling.seed.has_value());
  EXPECT_EQ(*r.sampling.seed, 42u);
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 3);
  EXPECT_EQ(r.sampling.logprobs, 3);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.user, "u-1");
  EXPECT_TRUE(r.return_token_ids);
  EXPECT_TRUE(r.sampling.ignore_eos);
  EXPECT_FALSE(r.echo);
  EXPECT_EQ(r.sampling.stop_after_tokens, 7);
  EXPECT_EQ(r.priority, -3);
  EXPECT_DOUBLE_EQ(r.timeout_s, 2.5);
}

TEST(OpenAiApiTest, DefaultsWhenFieldsAreAbsentOrNull) {
  auto result = parse_generation_request(
      R"({"prompt": "x", "max_tokens": null, "temperature": null, "stop": null,
          "logprobs": null, "seed": null, "n": null})",
      kC, test_limits());
  const GenerationRequest r = ok(result);
  EXPECT_FALSE(r.max_tokens_given);
  EXPECT_EQ(r.n, 1);
  EXPECT_TRUE(r.stop_strings.empty());
  EXPECT_FALSE(r.logprobs);
  EXPECT_EQ(r.sampling.logprobs, -1);
  EXPECT_FALSE(r.sampling.seed.has_value());
  EXPECT_FLOAT_EQ(r.sampling.temperature, 1.0f);
  EXPECT_FALSE(r.stream);
  EXPECT_TRUE(r.model.empty());
}

TEST(OpenAiApiTest, PromptFormsAreAccepted) {
  const ApiLimits limits = test_limits();
  {
    const GenerationRequest r =
        ok(parse_generation_request(R"({"prompt": [1, 2, 31999]})", kC, limits));
    ASSERT_TRUE(r.prompt_ids.has_value());
    EXPECT_EQ(*r.prompt_ids, (std::vector<int32_t>{1, 2, 31999}));
    EXPECT_FALSE(r.prompt_text.has_value());
  }
  {
    const GenerationRequest r = ok(parse_generation_request(R"({"prompt": [[5, 6]]})", kC, limits));
    ASSERT_TRUE(r.prompt_ids.has_value());
    EXPECT_EQ(*r.prompt_ids, (std::vector<int32_t>{5, 6}));
  }
  {
    const GenerationRequest r =
        ok(parse_generation_request(R"({"prompt": ["h\u00e9llo \ud83d\ude00"]})", kC, limits));
    ASSERT_TRUE(r.prompt_text.has_value());
    EXPECT_EQ(*r.prompt_text, "h\xc3\xa9llo \xf0\x9f\x98\x80");
  }
}

TEST(OpenAiApiTest, IntegralFloatsAndBoundaryValuesAreAccepted) {
  const GenerationRequest r = ok(parse_generation_request(
      R"({"prompt": "x", "max_tokens": 2048.0, "n": 16, "seed": 9223372036854775808,
          "temperature": 2, "top_k": -1, "top_p": 1, "logprobs": 5, "stop": "###"})",
      kC, test_limits()));
  EXPECT_EQ(r.sampling.max_tokens, 2048);
  EXPECT_EQ(r.n, 16);
  EXPECT_EQ(*r.sampling.seed, uint64_t{1} << 63);
  EXPECT_FLOAT_EQ(r.sampling.temperature, 2.0f);
  EXPECT_EQ(r.sampling.top_k, -1);
  EXPECT_EQ(r.top_logprobs, 5);
  EXPECT_EQ(r.stop_strings, (std::vector<std::string>{"###"}));
}

TEST(OpenAiApiTest, ChatRequestIsParsed) {
  const std::string body = R"({
    "model": "strata-test",
    "messages": [
      {"role": "developer", "content": "Be brief."},
      {"role": "user", "content": [{"type": "text", "text": "one"},
                                   {"type": "text", "text": "two"}]},
      {"role": "assistant", "content": null, "tool_calls": []},
      {"role": "tool", "content": "42", "tool_call_id": "c1"},
      {"role": "user", "content": "thanks", "name": "bob"}],
    "max_tokens": 100, "max_completion_tokens": 50, "logprobs": true, "top_logprobs": 5,
    "tools": [], "response_format": {"type": "text"}, "parallel_tool_calls": false})";
  const GenerationRequest r = ok(parse_generation_request(body, kChat, test_limits()));
  EXPECT_EQ(r.route, kChat);
  ASSERT_EQ(r.messages.size(), 5u);
  EXPECT_EQ(r.messages[0].role, "developer");
  EXPECT_EQ(r.messages[0].content, "Be brief.");
  EXPECT_EQ(r.messages[1].content, "one\ntwo");
  EXPECT_EQ(r.messages[2].role, "assistant");
  EXPECT_EQ(r.messages[2].content, "");
  EXPECT_EQ(r.messages[3].role, "tool");
  EXPECT_EQ(r.messages[4].content, "thanks");
  EXPECT_EQ(r.sampling.max_tokens, 50);  // max_completion_tokens wins
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 5);
  EXPECT_EQ(r.sampling.logprobs, 5);
  EXPECT_FALSE(r.prompt_text.has_value());
}

TEST(OpenAiApiTest, ChatIgnoresCompletionsOnlyFields) {
  // `prompt` and `echo` mean nothing to chat; like other unknown fields they are ignored.
  const GenerationRequest r = ok(parse_generation_request(
      R"({"messages": [{"role": "user", "content": "x"}], "prompt": 5, "echo": "x"})", kChat,
      test_limits()));
  EXPECT_FALSE(r.echo);
}

TEST(OpenAiApiTest, RandomCorruptionsNeverThrowOrCrash) {
  const std::string valid = R"({"model": "strata-test", "prompt": [1, 2, 3], "max_tokens": 16,
    "temperature": 0.7, "stop": ["a", "b"], "logprobs": 2, "stream": true,
    "stream_options": {"include_usage": true}, "messages": [{"role": "user",
    "content": [{"type": "text", "text": "h\u00e9"}]}]})";
  std::mt19937 rng(1234);
  const ApiLimits limits = test_limits();
  int accepted = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string body = valid;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !body.empty(); ++e) {
      const size_t pos = rng() % body.size();
      switch (rng() % 4) {
        case 0:
          body[pos] = static_cast<char>(rng() % 256);
          break;
        case 1:
          body.erase(pos, 1 + rng() % 8);
          break;
        case 2:
          body.insert(pos, 1, "{}[],:\"0-e\\"[rng() % 11]);
          break;
        case 3:
          body.resize(pos);
          break;
      }
    }
    for (Route route : {kC, kChat}) {
      std::variant<GenerationRequest, ApiError> result;
      ASSERT_NO_THROW(result = parse_generation_request(body, route, limits)) << body;
      if (auto* e = std::get_if<ApiError>(&result)) {
        EXPECT_TRUE(e->http_status == 400 || e->http_status == 404) << e->message;
        EXPECT_FALSE(e->message.empty());
        EXPECT_TRUE(json::accept(error_body(*e)));
      } else {
        ++accepted;
      }
    }
  }
  EXPECT_GT(accepted, 0);
}

// The one length check, after tokenizing (the context window of test_limits() is 2048).
TEST(OpenAiApiTest, FitToContextIsTheOneLengthCheck) {
  // Parsing leaves max_tokens past the window to it: that needs the prompt's length.
  GenerationRequest big = ok(parse_generation_request(R"({"prompt": "x", "max_tokens": 5000})",
                                                      kC, test_limits()));
  const std::optional<ApiError> alone = fit_to_context(big, 1, 2048);
  ASSERT_TRUE(alone.has_value());
  EXPECT_EQ(alone->http_status, 400);
  EXPECT_EQ(alone->param, "max_tokens");
  EXPECT_EQ(alone->code, "context_length_exceeded");
  EXPECT_NE(alone->message.find("must be <= 2048. Given: 1 + 5000"), std::string::npos) << alone->message;

  GenerationRequest full = ok(parse_generation_request(R"({"prompt": "x", "max_tokens": 2048})",
                                                       kC, test_limits()));
  const std::optional<ApiError> together = fit_to_context(full, 1, 2048);
  ASSERT_TRUE(together.has_value());
  EXPECT_EQ(together->param, "prompt");
  EXPECT_FALSE(fit_to_context(full, 0, 2048).has_value());

  GenerationRequest exact = ok(parse_generation_request(R"({"prompt": "x", "max_tokens": 48})",
                                                        kC, test_limits()));
  EXPECT_FALSE(fit_to_context(exact, 2000, 2048).has_value());
  EXPECT_EQ(exact.sampling.max_tokens, 48);
  EXPECT_TRUE(fit_to_context(exact, 2001, 2048).has_value());

  // Left out, max_tokens becomes the rest of the window; a prompt that fills the window
  // still leaves no room for one token.
  GenerationRequest open = ok(parse_generation_request(R"({"prompt": "x"})", kC, test_limits()));
  EXPECT_FALSE(fit_to_context(open, 2000, 2048).has_value());
  EXPECT_EQ(open.sampling.max_tokens, 48);
  GenerationRequest filled = ok(parse_generation_request(R"({"prompt": "x"})", kC, test_limits()));
  const std::optional<ApiError> no_room = fit_to_context(filled, 2048, 2048);
  ASSERT_TRUE(no_room.has_value());
  EXPECT_EQ(no_room->param, "prompt");
}

TEST(OpenAiApiTest, TokenizeRequests) {
  const ApiLimits limits = test_limits();
  auto prompt = parse_tokenize_request(R"({"prompt": "hi", "model": "strata-test"})", limits);
  ASSERT_TRUE(std::holds_alternative<TokenizeRequest>(prompt));
  EXPECT_EQ(*std::get<TokenizeRequest>(prompt).prompt, "hi");
  EXPECT_TRUE(std::get<TokenizeRequest>(prompt).add_special_tokens);

  auto chat = parse_tokenize_request(
      R"({"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": false})",
      limits);
  ASSERT_TRUE(std::holds_alternative<TokenizeRequest>(chat));
  EXPECT_FALSE(std::get<TokenizeRequest>(chat).prompt.has_value());
  EXPECT_EQ(std::get<TokenizeRequest>(chat).messages.size(), 1u);
  EXPECT_FALSE(std::get<TokenizeRequest>(chat).add_special_tokens);
  EXPECT_FALSE(std::get<TokenizeRequest>(chat).add_generation_prompt);

  auto empty = parse_tokenize_request(R"({"prompt": ""})", limits);
  EXPECT_TRUE(std::holds_alternative<TokenizeRequest>(empty));

  struct Bad {
    std::string body;
    int status;
    std::string param;
  };
  for (const Bad& b : std::vector<Bad>{
           {"{", 400, ""},
           {R"({})", 400, "prompt"},
           {R"({"prompt": "a", "messages": []})", 400, "messages"},
           {R"({"prompt": 5})", 400, "prompt"},
           {R"({"prompt": "a", "add_special_tokens": "yes"})", 400, "add_special_tokens"},
           {R"({"messages": []})", 400, "messages"},
           {R"({"prompt": "a", "model": "nope"})", 404, "model"},
           {"{\"prompt\": \"\xff\"}", 400, "prompt"}}) {
    auto r = parse_tokenize_request(b.body, limits);
    ASSERT_TRUE(std::holds_alternative<ApiError>(r)) << b.body;
    EXPECT_EQ(std::get<ApiError>(r).http_status, b.status) << b.body;
    EXPECT_EQ(std::get<ApiError>(r).param, b.param) << b.body;
  }
}

TEST(OpenAiApiTest, DetokenizeRequests) {
  const ApiLimits limits = test_limits();
  auto good = parse_detokenize_request(R"({"tokens": [1, 2, 31999]})", limits);
  ASSERT_TRUE(std::holds_alternative<DetokenizeRequest>(good));
  EXPECT_EQ(std::get<DetokenizeRequest>(good).token_ids, (std::vector<int32_t>{1, 2, 31999}));
  auto empty = parse_detokenize_request(R"({"tokens": []})", limits);
  ASSERT_TRUE(std::holds_alternative<DetokenizeRequest>(empty));

  struct Bad {
    std::string body;
    std::string param;
  };
  for (const Bad& b : std::vector<Bad>{{R"({})", "tokens"},
                                       {R"({"tokens": "1 2"})", "tokens"},
                                       {R"({"tokens": [1, 32000]})", "tokens[1]"},
                                       {R"({"tokens": [-3]})", "tokens[0]"},
                                       {R"({"tokens": [1e400]})", "tokens[0]"},
                                       {"[]", ""}}) {
    auto r = parse_detokenize_request(b.body, limits);
    ASSERT_TRUE(std::holds_alternative<ApiError>(r)) << b.body;
    EXPECT_EQ(std::get<ApiError>(r).http_status, 400);
    EXPECT_EQ(std::get<ApiError>(r).param, b.param) << b.body;
  }
}

TEST(ApiErrorTest, ErrorBodyHasOpenAiShape) {
  const json j = json::parse(error_body(ApiError{.http_status = 400,
                                                 .message = "`n` must be in [1, 16]. Given: 0",
                                                 .type = "invalid_request_error",
                                                 .param = "n",
                                                 .code = ""}));
  ASSERT_TRUE(j.contains("error"));
  ASSERT_EQ(j.size(), 1u);
  const json& e = j["error"];
  EXPECT_EQ(e.size(), 4u);
  EXPECT_EQ(e["message"], "`n` must be in [1, 16]. Given: 0");
  EXPECT_EQ(e["type"], "invalid_request_error");
  EXPECT_EQ(e["param"], "n");
  EXPECT_TRUE(e["code"].is_null());

  const json no_param = json::parse(error_body(no_worker_error()));
  EXPECT_TRUE(no_param["error"]["param"].is_null());
  EXPECT_EQ(no_param["error"]["code"], "service_unavailable");
}

TEST(ApiErrorTest, ErrorHelpersUseOpenAiStatusesTypesAndCodes) {
  const ApiError ctx = context_length_error(2000, 100, 2048);
  EXPECT_EQ(ctx.http_status, 400);
  EXPECT_EQ(ctx.code, "context_length_exceeded");
  EXPECT_EQ(ctx.type, "invalid_request_error");
  EXPECT_NE(ctx.message.find("`prompt` tokens + `max_tokens` must be <= 2048. Given: 2000 + 100"),
            std::string::npos);

  const ApiError big = body_too_large_error(5000000, 1048576);
  EXPECT_EQ(big.http_status, 413);
  EXPECT_NE(big.message.find("1048576"), std::string::npos);

  const ApiError full = queue_full_error(256);
  EXPECT_EQ(full.http_status, 429);
  EXPECT_EQ(full.type, "requests");
  EXPECT_EQ(full.code, "rate_limit_exceeded");

  const ApiError down = no_worker_error();
  EXPECT_EQ(down.http_status, 503);
  EXPECT_EQ(down.type, "server_error");

  const ApiError bug = internal_server_error("oops \xff");
  EXPECT_EQ(bug.http_status, 500);
  EXPECT_EQ(bug.type, "server_error");
  EXPECT_TRUE(json::accept(error_body(bug)));

  EXPECT_EQ(api_error_from_status(invalid_argument("bad"), "x").http_status, 400);
  EXPECT_EQ(api_error_from_status(invalid_argument("bad"), "x").param, "x");
  EXPECT_EQ(api_error_from_status(Status(StatusCode::kResourceExhausted, "full")).http_status, 429);
  EXPECT_EQ(api_error_from_status(Status(StatusCode::kUnavailable, "down")).http_status, 503);
  EXPECT_EQ(api_error_from_status(Status(StatusCode::kInternal, "bug")).http_status, 500);
}

}  // namespace
}  // namespace strata::router
