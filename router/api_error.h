// API errors: the OpenAI error body and the constructors for each HTTP status the router
// answers with. Status codes map to HTTP here and only here (api_error_from_status).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "router/api_types.h"

namespace strata::router {

// {"error": {"message", "type", "param" (null when empty), "code" (null when empty)}}
std::string error_body(const ApiError& error);

// 400 context_length_exceeded, TGI style:
// "`prompt` tokens + `max_tokens` must be <= 2048. Given: 2000 + 100". Its param is the field
// to change: `max_tokens` when max_tokens alone is past the window, else `prompt`.
ApiError context_length_error(int64_t prompt_tokens, int64_t max_tokens, int64_t max_model_len);
// 413: the body is over the server's limit (before any parsing).
ApiError body_too_large_error(size_t body_bytes, size_t limit_bytes);
// 503: a body that got no room in --max-body-bytes-in-flight in time (router/body_budget.h).
ApiError body_budget_error(size_t body_bytes, int64_t capacity_bytes);
// 429, type "requests", code "rate_limit_exceeded": the admission queue is full.
ApiError queue_full_error(size_t queue_limit);
// 404, code "model_not_found", param "model": `given` is not the served model, as OpenAI
// answers for an unknown model.
ApiError model_not_found_error(std::string_view given, std::string_view served);
// 503, type "server_error", code "service_unavailable": no live worker group.
ApiError no_worker_error();
// 503, type "server_error", code "service_unavailable": the router is draining (SIGTERM).
ApiError shutting_down_error();
// 500, type "server_error", code "internal_error": a strata bug; `what` is logged detail.
ApiError internal_server_error(std::string_view what);
// The one mapping from Status codes to HTTP: kInvalidArgument/kOutOfRange/kNotFound → 400,
// kResourceExhausted → 429, kUnavailable → 503, anything else → 500.
ApiError api_error_from_status(const Status& status, std::string param = "");

}  // namespace strata::router
