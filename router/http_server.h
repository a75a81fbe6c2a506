// HttpServer: the router's front door, event-driven on Boost.Beast (Asio). A few I/O threads
// hold every connection (idle, slow or streaming) without a thread each; only a request that
// has arrived whole runs a handler, on a bounded pool or inline for the quick routes. So
// thousands of connections, slow senders and long streams cannot starve the probes or each
// other (cpp-httplib holds a thread per connection, and 64 slow clients took it down).
//
// Per request: the head within --read-timeout-s of its first byte and the body within the
// same deadline (a whole-request deadline, not a per-read one); one Content-Length; header
// count and size limits; the head checked (`check_head`) before the body is read; the body
// read only after its size is reserved in the BodyBudget. Pipelined requests are answered in
// order. Connections over the global or the per-client cap get 503 or 429 and are closed.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "router/body_budget.h"
#include "router/http_access.h"

namespace strata::router {

struct HttpRequest {
  RequestHead head;  // method, path (without the query), headers
  std::string target;  // as the client sent it
  std::string body;
  BodyBudget::Reservation reservation;  // the body's bytes in the budget

  void release_body() {
    std::string().swap(body);
    reservation.release();
  }
};

class LaterResponse;

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false;  // end the connection after this response
  // Set: the answer comes later (a stream, or a whole body once the engine is done); `status`,
  // `content_type` and `headers` are sent first for a streamed one.
  std::shared_ptr<LaterResponse> later;

  void set_header(std::string name, std::string value) { headers.emplace_back(std::move(name), std::move(value)); }
};

// An answer produced over time, without a thread waiting for it: the producer calls `wake`
// whenever produce() may have more, and the connection's I/O thread then calls produce().
class LaterResponse {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~LaterResponse() = default;
  // Streamed: sent chunked as produce() gives it. Otherwise one whole response when done.
  virtual bool streamed() const = 0;
  // `wake` may be called from any thread, any number of times, also after end().
  virtual void start(std::function<void()> wake) = 0;
  // Never blocks. Streamed: appends what is ready to `res.body`; whole: fills `res` once done.
  // Returns true when that was the last of it.
  virtual bool produce(HttpResponse& res) = 0;
  virtual Clock::time_point deadline() const = 0;
  virtual void expire() = 0;  // the deadline passed: stop the work (produce() then finishes)
  // The exchange is over; `completed` false when the client went away first.
  virtual void end(bool completed) = 0;
};

struct HttpRoute {
  std::string method;
  std::string path;  // exact, or a prefix when it ends with '/'
  // Runs on the handler pool (parsing, tokenizing). Otherwise on the I/O thread: only for
  // handlers that never wait (probes, model lists), so they answer whatever the load.
  bool blocking = false;
  std::function<HttpResponse(HttpRequest&)> handler;
};

// strata-router fills these from RouterConfig, where its flags and their defaults are defined.
struct HttpServerSettings {
  std::string host = "127.0.0.1";
  int port = 0;              // 0: a free one
  std::string port_flag;     // the option to change when the port is taken
  int io_threads = 1;
  int handler_threads = 4;
  int read_timeout_s = 10;   // for a whole request, from its first byte
  int keep_alive_timeout_s = 30;  // an idle connection between requests
  int write_timeout_s = 60;  // for each write of a response (a client that stops reading)
  int max_connections = 8192;
  int max_connections_per_client = 2048;  // per peer address
  size_t max_body_bytes = 4 << 20;
  size_t max_header_bytes = 64 << 10;
  std::chrono::milliseconds body_budget_wait{10000};
  BodyBudget* body_budget = nullptr;  // none: bodies are bounded one by one only
};

struct HttpServerHooks {
  std::vector<HttpRoute> routes;
  // On every request's head before its body is read: an answer refuses it (access, CORS).
  // Headers it sets on `cors` go on whatever answer the request then gets.
  std::function<std::optional<HttpResponse>(const RequestHead&, HttpResponse& cors)> check_head;
  // The answer to an error the server finds itself (404, 400, 408, 413, 431, 500, 503).
  std::function<HttpResponse(const RequestHead&, int status, std::string_view why)> error_response;
  // After each answer (its status), for metrics.
  std::function<void(const RequestHead&, int status)> on_answer;
};

class HttpServer {
 public:
  HttpServer(HttpServerSettings settings, HttpServerHooks hooks);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens (no SO_REUSEPORT: a busy port is an error naming `port_flag`); returns
  // the port.
  StatusOr<int> bind();
  // Serves until stop(), on the calling thread and io_threads - 1 more.
  void run();
  // Stops accepting and closes every connection; run() returns. Any thread, any number of times.
  void stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::router
