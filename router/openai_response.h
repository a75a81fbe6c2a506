// OpenAI-compatible response bodies: completions, chat completions, their streaming chunks
// (SSE), /v1/models, /tokenize and /detokenize. Field names, order and nesting follow
// OpenAI's API reference and vLLM's server:
//   text_completion:  {id, object, created, model, choices: [{index, text, logprobs:
//                      {tokens, token_logprobs, top_logprobs: [{token: logprob}],
//                      text_offset} | null, finish_reason}], usage}
//   chat.completion:  {..., choices: [{index, message: {role, content}, logprobs: {content:
//                      [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]}
//                      | null, finish_reason}], usage}
//   chunks:           the same per choice, with `text` / `delta` holding only the new text.
// vLLM's return_token_ids adds "token_ids" to each choice and "prompt_token_ids" to the
// response (and to the first chunk of a stream).
//
// Conventions: finish_reason "" is written as null (still streaming); non-finite logprobs
// (-inf for a token the sampler had masked) are written as -9999.0, as vLLM does, because
// JSON has no infinity; invalid UTF-8 in any text becomes U+FFFD.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "router/api_types.h"

namespace strata::router {

// What every response and stream chunk of one request shares.
struct ResponseContext {
  Route route = Route::kCompletions;
  std::string id;                 // "cmpl-…" or "chatcmpl-…" (make_response_id)
  int64_t created = 0;            // Unix seconds
  std::string model;              // the served model's name
  bool logprobs = false;          // write logprobs objects (else null)
  bool return_token_ids = false;  // write "token_ids" / "prompt_token_ids"
  bool include_usage = false;     // streaming: chunks carry "usage": null, then usage_chunk
};

// "cmpl-" / "chatcmpl-" + 32 random hex digits (a thread-local generator seeded from
// std::random_device).
std::string make_response_id(Route route);
ResponseContext make_response_context(const GenerationRequest& request, std::string model,
                                      int64_t created);

// Whole responses. `choices` are finished; prompt_token_ids is written only with
// return_token_ids.
std::string completion_response(const ResponseContext& ctx, std::span<const Choice> choices,
                                const Usage& usage, std::span<const int32_t> prompt_token_ids = {});
std::string chat_response(const ResponseContext& ctx, std::span<const Choice> choices,
                          const Usage& usage, std::span<const int32_t> prompt_token_ids = {});

// Streaming. A Choice here is a delta: the text, ids and logprobs new since the last chunk
// of that choice, and finish_reason on its last chunk.
//
// Completions: text_offset is the length (in Unicode code points, as vLLM's Python len)
// of the text already sent for this choice, so logprobs.text_offset continues across chunks.
// Pass prompt_token_ids on a request's first chunk only.
std::string completion_chunk(const ResponseContext& ctx, const Choice& delta,
                             int64_t text_offset = 0,
                             std::span<const int32_t> prompt_token_ids = {});
// Chat: first chunk of choice `index`: delta {"role": "assistant", "content": ""}.
std::string chat_first_chunk(const ResponseContext& ctx, int32_t index,
                             std::span<const int32_t> prompt_token_ids = {});
// Chat: later chunks: delta {"content": text}; a chunk with a finish_reason and no text has
// an empty delta {} (OpenAI's final chunk per choice).
std::string chat_chunk(const ResponseContext& ctx, const Choice& delta);
// With stream_options.include_usage: the last chunk before [DONE], "choices": [].
std::string usage_chunk(const ResponseContext& ctx, const Usage& usage);

// "data: <json>\n\n" and "data: [DONE]\n\n".
std::string sse_event(std::string_view json_text);
std::string sse_done();

// GET /v1/models: {"object": "list", "data": [{id, object: "model", created, owned_by,
// root, parent, max_model_len}]}.
std::string models_response(std::string_view served_model_name, int64_t created,
                            int64_t max_model_len);
// GET /v1/models/{id}: that list's one model object.
std::string model_response(std::string_view served_model_name, int64_t created,
                           int64_t max_model_len);
// POST /tokenize → {"tokens": [...], "count": n, "max_model_len": m}
std::string tokenize_response(std::span<const int32_t> token_ids, int64_t max_model_len);
// POST /detokenize → {"prompt": text}
std::string detokenize_response(std::string_view text);

}  // namespace strata::router
