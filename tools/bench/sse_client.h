// One streaming request to an OpenAI-compatible `/v1/completions` endpoint, timed token
// by token. Works against strata, vLLM and llama.cpp's server: the body uses only OpenAI
// fields plus the common extensions `ignore_eos` and (optionally) `return_token_ids`.
//
// Timing contract: every time is measured from just before the request is written, with
// a steady clock; a token "arrives" when the SSE event carrying it has been read. A chunk
// carrying k tokens (token_ids of length k) counts as k tokens arriving evenly over the
// gap since the previous chunk.
//
// Retry contract: a request whose connection the server closed before any response arrived
// (no status line; a kept-alive connection the server dropped as the request went out, as
// llama.cpp's llama-server does) is sent again on a fresh connection, at most twice. Its
// times are those of the try that was answered; `retries` counts the others. A refused
// connection, a timeout, or a failure after the response began is never retried.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace strata::bench {

// http://host:port[/prefix] split up; `prefix` is prepended to every route ("" or "/x").
struct Endpoint {
  std::string host;
  int port = 80;
  std::string prefix;
};
StatusOr<Endpoint> parse_endpoint(const std::string& url);

struct RequestSpec {
  std::vector<int32_t> prompt_ids;  // sent as a token-id prompt, so its length is exact
  int32_t output_tokens = 16;       // max_tokens, with ignore_eos so it is also the minimum
  // > output_tokens: max_tokens is this cap instead, and the output length is forced with
  // strata's `stop_after_tokens` extension, so the server's scheduler cannot read the
  // answer's length off max_tokens (as it could not in production).
  int32_t max_tokens_cap = 0;
};

struct RequestResult {
  bool ok = false;
  std::string failure;              // "" when ok, else "http 503", "connection", "stream error", ...
  double send_s = 0;                // when it was sent, since the start of the load point
  double ttft_s = 0;                // time to the first token
  double e2e_s = 0;                 // time to the end of the stream
  std::vector<double> itl_s;        // every inter-token gap, output_tokens - 1 of them
  int32_t input_tokens = 0;         // what bench sent
  int32_t output_tokens = 0;        // what bench counted in the stream
  int32_t retries = 0;              // tries closed unanswered before the one reported
  std::optional<int32_t> usage_prompt_tokens;      // the server's own count, if it sent usage
  std::optional<int32_t> usage_completion_tokens;
};

struct ClientOptions {
  std::string model;                // the `model` field; "" leaves it out
  bool return_token_ids = true;     // ask for token_ids per chunk (strata, vLLM); exact counts
  double timeout_s = 600;
};

// A connection to one endpoint. Not thread-safe: one per thread.
class StreamClient {
 public:
  StreamClient(const Endpoint& endpoint, ClientOptions options);
  ~StreamClient();
  StreamClient(const StreamClient&) = delete;
  StreamClient& operator=(const StreamClient&) = delete;

  // Sends `spec` and reads the whole stream. Never throws; failures land in the result.
  RequestResult run(const RequestSpec& spec);

 private:
  // One try; `retry` is set when the server closed the connection unanswered.
  RequestResult send_once(const RequestSpec& spec, bool& retry);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// GET {prefix}/v1/models: the first model's id, for the `model` field.
StatusOr<std::string> fetch_first_model(const Endpoint& endpoint);

// POST {prefix}/tokenize {"prompt": text}: the ids (strata and vLLM answer this route).
StatusOr<std::vector<int32_t>> tokenize_remote(const Endpoint& endpoint, const std::string& text);

}  // namespace strata::bench
