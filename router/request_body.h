// Reading a POST body under the router's BodyBudget (router/body_budget.h). The routes that
// take a body are registered with httplib's content-reader handlers, so the body is read
// here, after its size is reserved, and never before: a declared size over --max-body-bytes
// is refused unread (413), a chunked body as soon as it grows past it, and a body that cannot
// get room within the read timeout is refused with 503 and Retry-After.
#pragma once

#include <chrono>
#include <string>
#include <variant>

#include <httplib.h>

#include "router/api_error.h"
#include "router/body_budget.h"

namespace strata::router {

// A request body and the budget it holds; release() as soon as the body (and whatever was
// parsed from it at that size) is no longer needed.
struct IncomingBody {
  std::string text;
  BodyBudget::Reservation reservation;

  void release() {
    std::string().swap(text);
    reservation.release();
  }
};

struct BodyLimits {
  size_t max_body_bytes = 0;
  std::chrono::milliseconds wait{0};  // for room in the budget
};

std::variant<IncomingBody, ApiError> read_request_body(const httplib::Request& req,
                                                       const httplib::ContentReader& reader,
                                                       BodyBudget& budget, const BodyLimits& limits);

// The size in a Content-Length header that is a decimal byte count; nullopt otherwise.
std::optional<size_t> declared_content_length(const httplib::Request& req);

}  // namespace strata::router
