// OpenAI-compatible request parsing and error bodies: HTTP body → validated request, and
// ApiError → {"error": {...}}. No networking; router/server.cpp calls these.
//
// Design note — validation policy (the same for every route):
//   - Strict types: each known field has one JSON type; anything else is a 400 naming the
//     field and echoing the value ("`max_tokens` must be an integer. Given: \"ten\"").
//     Integer fields also accept integral floats (2.0), as OpenAI's and vLLM's (pydantic)
//     validators do; 2^70 and 1e309 are answered with a range error naming the field.
//   - null means "not given" for every optional field (OpenAI SDKs send explicit nulls).
//   - Unknown fields are ignored: OpenAI clients send extras (metadata, store, service_tier,
//     vLLM/TGI-only knobs) and refusing them would break those clients. Known fields whose
//     behaviour strata does not implement are refused rather than silently ignored when
//     they would change the output: logit_bias (non-empty), best_of (≠ 1 and ≠ n), suffix,
//     tools (non-empty), response_format (type other than "text"), echo with logprobs.
//   - Ranges follow OpenAI where it is stricter than SamplingParams (temperature [0, 2],
//     logprobs 0..5 for completions, top_logprobs 0..20 for chat), else SamplingParams::
//     validate() and its messages (top_p, top_k, min_p, penalties).
//   - Never throws, never crashes: any escaped exception becomes a 500.
// The context-length check needs the prompt's token count, so it happens once, after
// tokenizing (fit_to_context); parsing checks only that max_tokens is a positive int32.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "router/api_error.h"
#include "router/api_types.h"
#include "router/openai_response.h"

namespace strata::router {

// Limits a request is validated against; filled from the served model and ServerConfig.
struct ApiLimits {
  int64_t max_model_len = 0;      // context window in tokens (fit_to_context)
  int32_t vocab_size = 0;         // token ids (prompt, stop_token_ids, detokenize) < this
  std::string served_model_name;  // `model`, when given, must equal this (else 404)
  int32_t max_n = 16;             // choices per request
  int32_t max_stop = 16;          // stop strings per request
  int32_t max_top_logprobs = 20;  // chat `top_logprobs`
  // Additions (documented here, not in the first spec):
  int32_t max_completion_logprobs = 5;  // completions `logprobs` (OpenAI allows 0..5)
  int32_t max_stop_token_ids = 64;      // `stop_token_ids` entries (vLLM extension)
};

// POST /v1/completions (route kCompletions) or /v1/chat/completions (kChatCompletions).
// On success: sampling validated, prompt/messages set, max_tokens_given false when the
// client left max_tokens out (sampling.max_tokens then holds SamplingParams' default and the
// router fills in the rest of the context after tokenizing).
std::variant<GenerationRequest, ApiError> parse_generation_request(std::string_view body,
                                                                   Route route,
                                                                   const ApiLimits& limits);

// The router's one length check, after tokenizing: prompt tokens + max_tokens must be
// <= max_model_len (context_length_error otherwise, naming `max_tokens` when it alone is past
// the window, else `prompt`). When the client left max_tokens out it becomes the rest of the
// window, at least 1.
std::optional<ApiError> fit_to_context(GenerationRequest& request, int64_t prompt_tokens,
                                       int64_t max_model_len);

// POST /tokenize: {"prompt": str} or {"messages": [...]} (exactly one), optional "model",
// "add_special_tokens" (default true for a prompt, false for messages, whose chat template
// carries the special tokens, as vLLM), and for messages the chat fields of
// router/chat_request.h ("add_generation_prompt" default true, "tools",
// "chat_template_kwargs"), rendered as /v1/chat/completions renders them.
struct TokenizeRequest {
  std::optional<std::string> prompt;  // set for the prompt form (may be "")
  std::vector<ChatMessage> messages;  // set for the messages form (non-empty)
  std::string tools_json;                 // messages form: as GenerationRequest's
  std::string chat_template_kwargs_json;  // messages form: as GenerationRequest's
  bool add_special_tokens = true;
  bool add_generation_prompt = true;
};
std::variant<TokenizeRequest, ApiError> parse_tokenize_request(std::string_view body,
                                                               const ApiLimits& limits);

// POST /detokenize: {"tokens": [ids in [0, vocab_size)]}, optional "model".
struct DetokenizeRequest {
  std::vector<int32_t> token_ids;
};
std::variant<DetokenizeRequest, ApiError> parse_detokenize_request(std::string_view body,
                                                                   const ApiLimits& limits);

}  // namespace strata::router
