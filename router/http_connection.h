// HttpConnection: one client connection of the HttpServer (router/http_server.h), driven by
// Asio completions on its own strand: wait for a request, read its head and body under one
// deadline, answer it (a handler on the pool, or inline), and read the next. A LaterResponse
// is written as it wakes the connection; a streamed one keeps a read posted, so a client that
// goes away is noticed at once and its work stopped.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "router/http_server.h"

namespace strata::router {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;

// What every connection of one server shares.
struct HttpServerContext {
  HttpServerSettings settings;
  HttpServerHooks hooks;
  net::thread_pool handler_pool;
  std::atomic<bool> stopping{false};

  // Open connections, in all and per peer address (the caps).
  std::mutex mu;
  int open = 0;
  std::unordered_map<std::string, int> open_per_client;

  HttpServerContext(HttpServerSettings s, HttpServerHooks h)
      : settings(std::move(s)), hooks(std::move(h)), handler_pool(static_cast<size_t>(settings.handler_threads)) {}
};

template <typename Message>
void set_response_fields(Message& msg, const HttpResponse& res) {
  if (!res.content_type.empty()) msg.set(http::field::content_type, res.content_type);
  for (const auto& [name, value] : res.headers) msg.insert(name, value);
}

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(tcp::socket socket, std::shared_ptr<HttpServerContext> context, std::string peer);
  ~HttpConnection();

  // Serves requests; `counted`: the connection holds a place in the caps until it ends.
  void start(bool counted);
  // Answers `status` (a cap reached) without reading a request, and closes.
  void refuse(int status, std::string why);

 private:
  using Parser = http::request_parser<http::string_body>;

  void wait_for_request();
  void read_head();
  void on_head(beast::error_code ec);
  void reserve_and_read_body(size_t bytes);
  void read_body();
  void answer_read_error(const beast::error_code& ec, std::string_view what);
  void dispatch();
  HttpResponse run_handler(const HttpRoute& route, HttpRequest& request) const;
  void answer(HttpResponse res);
  void answer_error(int status, std::string_view why);
  // `ending` (a whole LaterResponse) is told once the write is done.
  void write_whole(HttpResponse res, std::shared_ptr<LaterResponse> ending);

  // http_connection_later.cpp
  void start_later(HttpResponse res);
  void arm_later_timer(std::chrono::steady_clock::time_point at);
  void pump();
  void write_chunk(std::string data, bool last);
  void watch_for_disconnect();
  void resume_after_stream();
  void end_later(bool completed);
  void shut();  // half-close, read what is left for a moment, close
  void discard_until_closed();
  const HttpRoute* find_route(const RequestHead& head) const;
  RequestHead head_of(const Parser::value_type& message) const;

  beast::tcp_stream stream_;
  std::shared_ptr<HttpServerContext> context_;
  const std::string peer_;
  bool counted_ = false;
  beast::flat_buffer buffer_;
  std::optional<Parser> parser_;
  RequestHead head_;  // of the request being answered
  const HttpRoute* route_ = nullptr;
  bool keep_alive_ = true;
  HttpResponse cors_;  // headers check_head set for this request
  net::steady_timer timer_;  // body-budget retries; a LaterResponse's deadline
  net::steady_timer request_timer_;  // the whole-request deadline
  bool request_timed_out_ = false;
  std::chrono::steady_clock::time_point budget_deadline_{};
  BodyBudget::Reservation reservation_;

  // The LaterResponse being written.
  std::shared_ptr<LaterResponse> later_;
  bool later_keep_alive_ = true;
  bool writing_ = false;   // a write is in flight
  bool watching_ = false;  // watch_for_disconnect's read is in flight
  bool resume_when_watch_ends_ = false;
  bool closed_ = false;
  std::atomic<bool> wake_posted_{false};
  std::array<char, 4096> discard_{};
};

}  // namespace strata::router
