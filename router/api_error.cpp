#include "router/api_error.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "common/utf8.h"

namespace strata::router {

std::string error_body(const ApiError& error) {
  nlohmann::ordered_json inner;
  inner["message"] = utf8::to_valid_lossy(error.message);
  inner["type"] = error.type;
  inner["param"] =
      error.param.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(error.param);
  inner["code"] =
      error.code.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(error.code);
  nlohmann::ordered_json j;
  j["error"] = std::move(inner);
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

ApiError context_length_error(int64_t prompt_tokens, int64_t max_tokens, int64_t max_model_len) {
  return ApiError{
      .http_status = 400,
      .message = fmt::format(
          "`prompt` tokens + `max_tokens` must be <= {}. Given: {} + {}. Shorten the prompt or "
          "lower `max_tokens`.",
          max_model_len, prompt_tokens, max_tokens),
      .type = "invalid_request_error",
      // The field to change: max_tokens when it alone is past the window.
      .param = max_tokens > max_model_len ? "max_tokens" : "prompt",
      .code = "context_length_exceeded"};
}

ApiError body_too_large_error(size_t body_bytes, size_t limit_bytes) {
  return ApiError{.http_status = 413,
                  .message = fmt::format("Request body must be <= {} bytes. Given: {} bytes",
                                         limit_bytes, body_bytes),
                  .type = "invalid_request_error",
                  .param = "",
                  .code = "request_too_large"};
}

ApiError body_budget_error(size_t body_bytes, int64_t capacity_bytes) {
  return ApiError{.http_status = 503,
                  .message = fmt::format("the server is reading as many request bodies as it holds at once "
                                         "({} bytes, --max-body-bytes-in-flight); a body of {} bytes did not "
                                         "get room in time: retry the request",
                                         capacity_bytes, body_bytes),
                  .type = "server_error",
                  .param = "",
                  .code = "service_unavailable"};
}

ApiError queue_full_error(size_t queue_limit) {
  return ApiError{.http_status = 429,
                  .message = fmt::format("The server is at capacity ({} requests queued). "
                                         "Retry after a short delay.",
                                         queue_limit),
                  .type = "requests",
                  .param = "",
                  .code = "rate_limit_exceeded"};
}

ApiError model_not_found_error(std::string_view given, std::string_view served) {
  return ApiError{.http_status = 404,
                  .message = utf8::to_valid_lossy(fmt::format(
                      "The model `{}` does not exist. This server serves `{}`; see GET /v1/models.",
                      given, served)),
                  .type = "invalid_request_error",
                  .param = "model",
                  .code = "model_not_found"};
}

ApiError shutting_down_error() {
  return ApiError{.http_status = 503,
                  .message = "the server is shutting down and takes no new requests; retry the request "
                             "(another replica will serve it)",
                  .type = "server_error",
                  .param = "",
                  .code = "service_unavailable"};
}

ApiError no_worker_error() {
  return ApiError{.http_status = 503,
                  .message =
                      "No worker is available to serve the model right now. Retry "
                      "after a short delay.",
                  .type = "server_error",
                  .param = "",
                  .code = "service_unavailable"};
}

ApiError internal_server_error(std::string_view what) {
  return ApiError{.http_status = 500,
                  .message = utf8::to_valid_lossy(
                      fmt::format("Internal server error: {}. This is a bug in strata.", what)),
                  .type = "server_error",
                  .param = "",
                  .code = "internal_error"};
}

ApiError api_error_from_status(const Status& status, std::string param) {
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
    case StatusCode::kNotFound:
    case StatusCode::kUnimplemented:
      return ApiError{.http_status = 400,
                      .message = utf8::to_valid_lossy(status.message()),
                      .type = "invalid_request_error",
                      .param = std::move(param),
                      .code = ""};
    case StatusCode::kResourceExhausted: {
      ApiError e = queue_full_error(0);
      e.message = status.message();
      return e;
    }
    case StatusCode::kUnavailable: {
      ApiError e = no_worker_error();
      e.message = status.message();
      return e;
    }
    default:
      return internal_server_error(status.message());
  }
}

}  // namespace strata::router
