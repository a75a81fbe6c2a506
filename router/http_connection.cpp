#include "router/http_connection.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "router/api_error.h"

namespace strata::router {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// An idle connection's buffer: small, so thousands of them cost little; it grows as a
// request needs and is given back between requests.
constexpr size_t kReadChunk = 2 << 10;
constexpr size_t kKeptBufferBytes = 16 << 10;
constexpr auto kBudgetRetry = 10ms;
constexpr size_t kMaxTargetBytes = 8 << 10;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

int status_for_read_error(const beast::error_code& ec, bool timed_out) {
  if (timed_out) return 408;
  if (ec == http::error::header_limit) return 431;
  if (ec == http::error::body_limit) return 413;
  return 400;
}

}  // namespace

HttpConnection::HttpConnection(tcp::socket socket, std::shared_ptr<HttpServerContext> context, std::string peer)
    : stream_(std::move(socket)),
      context_(std::move(context)),
      peer_(std::move(peer)),
      timer_(stream_.get_executor()),
      request_timer_(stream_.get_executor()) {}

HttpConnection::~HttpConnection() {
  if (later_) later_->end(false);
  if (!counted_) return;
  std::lock_guard lock(context_->mu);
  --context_->open;
  if (--context_->open_per_client[peer_] <= 0) context_->open_per_client.erase(peer_);
}

void HttpConnection::start(bool counted) {
  counted_ = counted;
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->wait_for_request(); });
}

void HttpConnection::refuse(int status, std::string why) {
  net::dispatch(stream_.get_executor(), [self = shared_from_this(), status, why = std::move(why)] {
    self->keep_alive_ = false;
    self->answer_error(status, why);
  });
}

// Between requests: the keep-alive timeout, until the next request's first byte.
void HttpConnection::wait_for_request() {
  if (closed_ || context_->stopping.load()) return shut();
  if (buffer_.size() > 0) return read_head();  // pipelined
  if (buffer_.capacity() > kKeptBufferBytes) buffer_.shrink_to_fit();
  stream_.expires_after(std::chrono::seconds(context_->settings.keep_alive_timeout_s));
  stream_.async_read_some(buffer_.prepare(kReadChunk), [self = shared_from_this()](beast::error_code ec, size_t n) {
    if (ec) return self->shut();
    self->buffer_.commit(n);
    self->read_head();
  });
}

void HttpConnection::read_head() {
  const HttpServerSettings& s = context_->settings;
  parser_.emplace();
  parser_->header_limit(static_cast<uint32_t>(s.max_header_bytes));
  parser_->body_limit(s.max_body_bytes);
  head_ = {};
  keep_alive_ = true;
  route_ = nullptr;
  // One deadline for the head and the body: a client sending a byte a second gets no longer.
  // Its own timer, not the stream's, which would close the socket before a 408 is written.
  stream_.expires_never();
  request_timed_out_ = false;
  request_timer_.expires_after(std::chrono::seconds(s.read_timeout_s));
  request_timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
    auto self = weak.lock();
    if (ec || !self) return;
    self->request_timed_out_ = true;
    beast::error_code ignored;
    self->stream_.socket().cancel(ignored);
  });
  http::async_read_header(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
    self->on_head(ec);
  });
}

void HttpConnection::on_head(beast::error_code ec) {
  if (ec == http::error::end_of_stream) return shut();
  if (ec) return answer_read_error(ec, "request");
  if (parser_->get().target().size() > kMaxTargetBytes) {
    return answer_error(414, fmt::format("the request target is longer than {} bytes", kMaxTargetBytes));
  }
  head_ = head_of(parser_->get());
  keep_alive_ = parser_->get().keep_alive();
  cors_ = {};
  if (context_->hooks.check_head) {
    if (std::optional<HttpResponse> refused = context_->hooks.check_head(head_, cors_)) {
      return answer(std::move(*refused));
    }
  }
  route_ = find_route(head_);
  if (route_ == nullptr) return answer_error(404, "no such route");
  if (parser_->is_done()) return dispatch();
  const boost::optional<uint64_t> length = parser_->content_length();
  const size_t max_body = context_->settings.max_body_bytes;
  if (length && *length > max_body) {
    return answer_error(413, body_too_large_error(*length, max_body).message);
  }
  // A chunked body says nothing of its size: it reserves the most it may grow to.
  budget_deadline_ = Clock::now() + context_->settings.body_budget_wait;
  reserve_and_read_body(length ? static_cast<size_t>(*length) : max_body);
}

void HttpConnection::reserve_and_read_body(size_t bytes) {
  BodyBudget* budget = context_->settings.body_budget;
  if (budget == nullptr) return read_body();
  if (auto reservation = budget->reserve(static_cast<int64_t>(bytes), 0ms)) {
    reservation_ = std::move(*reservation);
    return read_body();
  }
  if (Clock::now() + kBudgetRetry > budget_deadline_) {
    return answer_error(503, body_budget_error(bytes, budget->capacity()).message);
  }
  // The budget has no way to wake a connection; a retry every few ms costs nothing at the
  // few bodies that ever wait.
  timer_.expires_after(kBudgetRetry);
  timer_.async_wait([self = shared_from_this(), bytes](beast::error_code ec) {
    if (!ec && !self->closed_) self->reserve_and_read_body(bytes);
  });
}

void HttpConnection::answer_read_error(const beast::error_code& ec, std::string_view what) {
  request_timer_.cancel();
  keep_alive_ = false;
  const int status = status_for_read_error(ec, request_timed_out_);
  const size_t max_body = context_->settings.max_body_bytes;
  if (status == 413) return answer_error(413, body_too_large_error(max_body + 1, max_body).message);
  if (status == 408) {
    return answer_error(408, fmt::format("the {} did not arrive whole within {} s (--read-timeout-s)", what,
                                         context_->settings.read_timeout_s));
  }
  answer_error(status, fmt::format("the {} could not be read: {}", what, ec.message()));
}

void HttpConnection::read_body() {
  auto read = [self = shared_from_this()] {
    http::async_read(self->stream_, self->buffer_, *self->parser_, [self](beast::error_code ec, size_t) {
      if (ec) return self->answer_read_error(ec, "request body");
      self->dispatch();
    });
  };
  auto expect = parser_->get()[http::field::expect];
  if (!beast::iequals(expect, "100-continue")) return read();
  net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                   [self = shared_from_this(), read](beast::error_code ec, size_t) {
                     if (ec) return self->shut();
                     read();
                   });
}

void HttpConnection::dispatch() {
  request_timer_.cancel();
  HttpRequest request{.head = head_,
                      .target = std::string(parser_->get().target()),
                      .body = std::move(parser_->get().body()),
                      .reservation = std::move(reservation_)};
  const HttpRoute* route = route_;
  if (!route->blocking) return answer(run_handler(*route, request));
  net::post(context_->handler_pool, [self = shared_from_this(), route, request = std::move(request)]() mutable {
    HttpResponse res = self->run_handler(*route, request);
    request.release_body();
    net::post(self->stream_.get_executor(), [self, res = std::move(res)]() mutable { self->answer(std::move(res)); });
  });
}

HttpResponse HttpConnection::run_handler(const HttpRoute& route, HttpRequest& request) const {
  try {
    return route.handler(request);
  } catch (const std::exception& e) {
    spdlog::error("router: unhandled exception on {} {}: {}", request.head.method, request.head.path, e.what());
    return context_->hooks.error_response(request.head, 500, e.what());
  }
}

void HttpConnection::answer_error(int status, std::string_view why) {
  answer(context_->hooks.error_response(head_, status, why));
}

void HttpConnection::answer(HttpResponse res) {
  if (closed_) return;
  request_timer_.cancel();  // it would cancel the answer's write
  // A body left unread means the connection cannot carry another request.
  if (!parser_ || !parser_->is_done()) res.close = true;
  for (const auto& header : cors_.headers) res.headers.push_back(header);
  if (res.later) return start_later(std::move(res));
  if (context_->hooks.on_answer) context_->hooks.on_answer(head_, res.status);
  write_whole(std::move(res), nullptr);
}

void HttpConnection::write_whole(HttpResponse res, std::shared_ptr<LaterResponse> ending) {
  auto msg = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(res.status), 11);
  set_response_fields(*msg, res);
  const bool keep = keep_alive_ && !res.close && !context_->stopping.load();
  msg->keep_alive(keep);
  msg->body() = std::move(res.body);
  msg->prepare_payload();
  stream_.expires_after(std::chrono::seconds(context_->settings.write_timeout_s));
  http::async_write(stream_, *msg, [self = shared_from_this(), msg, keep, ending](beast::error_code ec, size_t) {
    if (ending) ending->end(!ec);
    if (ec || !keep) return self->shut();
    self->wait_for_request();
  });
}

}  // namespace strata::router
