// The router's view of an OpenAI-style generation request after parsing and validation,
// and of its results before formatting. router/openai_api.h turns HTTP bodies into these
// and these into response bodies; router/server.cpp runs them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/sampling_params.h"

namespace strata::router {

// An error in the shape of OpenAI's: {"error": {"message", "type", "param", "code"}}.
struct ApiError {
  int http_status = 400;         // 400, 404, 413, 429, 503 (500 only for a strata bug)
  std::string message;           // names the field, the limit and the value, says what to do
  std::string type = "invalid_request_error";  // OpenAI's error types
  std::string param;             // the offending field ("max_tokens", "messages[2].content"), or ""
  std::string code;              // e.g. "context_length_exceeded", "model_not_found", or ""
};

enum class Route { kCompletions, kChatCompletions };

struct ChatMessage {
  std::string role;     // system | developer | user | assistant | tool (as given)
  std::string content;  // text parts joined with "\n" ("" when content was null or absent)
  // What a model's Jinja template also sees (vLLM's conversation message):
  std::vector<std::string> content_parts;  // the text parts when content was an array
  bool content_is_parts = false;
  bool content_given = true;   // false: null or absent (assistant turns with tool calls)
  std::string tool_calls_json;  // assistant: the `tool_calls` array as given (JSON text), or ""
  std::string tool_call_id;     // tool: the call it answers, or ""
  std::string name;             // optional participant name, or ""
};

// A validated request. Token ids are filled by the router after tokenizing.
struct GenerationRequest {
  Route route = Route::kCompletions;
  std::string model;                          // as given ("" when omitted)
  // Completions: text prompt or token-id prompt (exactly one is set).
  std::optional<std::string> prompt_text;
  std::optional<std::vector<int32_t>> prompt_ids;
  std::vector<ChatMessage> messages;          // chat
  // Chat, for the model's Jinja template (JSON text with the request's key order, "" when
  // absent): `tools` (an array) and `chat_template_kwargs` (an object of extra template
  // variables, as in vLLM).
  std::string tools_json;
  std::string chat_template_kwargs_json;
  bool add_generation_prompt = true;          // chat: vLLM's extension, default true
  SamplingParams sampling;                    // max_tokens, temperature, seed, ... validated
  bool max_tokens_given = false;              // false: router fills in "rest of the context"
  std::vector<std::string> stop_strings;      // ≤ 16, each non-empty
  int32_t n = 1;                              // choices, 1..16
  bool stream = false;
  bool include_usage = false;                 // stream_options.include_usage
  bool echo = false;                          // completions: prepend the prompt to the text
  bool logprobs = false;                      // completions: logprobs != null; chat: logprobs
  int32_t top_logprobs = 0;                   // 0..20
  bool return_token_ids = false;              // vLLM extension
  std::string user;
  // Extensions (as in vLLM): a higher priority is scheduled first (with --order sjf or fcfs
  // through the scheduler); timeout_s > 0 overrides --request-timeout-s for this request.
  int32_t priority = 0;
  double timeout_s = 0;
};

struct TopLogprob {
  int32_t token_id = 0;
  std::string token;   // the token's text (bytes of the piece, UTF-8 repaired for JSON)
  float logprob = 0.0f;
};

struct TokenLogprobs {
  int32_t token_id = 0;
  std::string token;
  float logprob = 0.0f;
  std::vector<TopLogprob> top;
};

// One finished (or, when streaming, partial) choice.
struct Choice {
  int32_t index = 0;
  std::string text;                      // completions text or chat message content
  std::vector<int32_t> token_ids;        // generated ids (return_token_ids)
  std::vector<TokenLogprobs> logprobs;   // when logprobs were asked for
  std::string finish_reason;             // "stop", "length", "abort"→ not shown; "" while streaming
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;  // of prompt_tokens, served from the prefix cache
  int64_t completion_tokens = 0;
  int64_t total_tokens() const { return prompt_tokens + completion_tokens; }
};

}  // namespace strata::router
