#include "router/request_body.h"

#include <fmt/format.h>

namespace strata::router {
namespace {

ApiError body_budget_error(size_t bytes, int64_t capacity) {
  return ApiError{.http_status = 503,
                  .message = fmt::format("the server is reading as many request bodies as it holds at once "
                                         "({} bytes, --max-body-bytes-in-flight); a body of {} bytes did not "
                                         "get room in time: retry the request",
                                         capacity, bytes),
                  .type = "server_error",
                  .param = "",
                  .code = "service_unavailable"};
}

}  // namespace

std::optional<size_t> declared_content_length(const httplib::Request& req) {
  const std::string v = req.get_header_value("Content-Length");
  if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return static_cast<size_t>(std::stoull(v));
}

std::variant<IncomingBody, ApiError> read_request_body(const httplib::Request& req,
                                                       const httplib::ContentReader& reader,
                                                       BodyBudget& budget, const BodyLimits& limits) {
  const std::optional<size_t> declared = declared_content_length(req);
  if (declared && *declared > limits.max_body_bytes) return body_too_large_error(*declared, limits.max_body_bytes);
  // A chunked body says nothing of its size: it reserves the most it may grow to.
  const size_t reserved = declared.value_or(limits.max_body_bytes);
  std::optional<BodyBudget::Reservation> reservation = budget.reserve(static_cast<int64_t>(reserved), limits.wait);
  if (!reservation) return body_budget_error(reserved, budget.capacity());
  IncomingBody body{.text = {}, .reservation = std::move(*reservation)};
  if (declared) body.text.reserve(*declared);
  size_t received = 0;
  const bool read = reader([&](const char* data, size_t size) {
    received += size;
    if (received > limits.max_body_bytes) return false;
    body.text.append(data, size);
    return true;
  });
  if (received > limits.max_body_bytes) return body_too_large_error(received, limits.max_body_bytes);
  if (!read) {
    return ApiError{.message = fmt::format("the request body could not be read (it ended after {} bytes{})",
                                           received, declared ? fmt::format(" of {}", *declared) : ""),
                    .param = ""};
  }
  return body;
}

}  // namespace strata::router
