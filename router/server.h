// RouterServer: the router process. cpp-httplib serves the OpenAI routes on a thread per
// connection; requests are tokenized on a pool, sent to worker groups by the Dispatcher
// (ZeroMQ) — directly, or through the RouterScheduler's SchedulingLoop when an admission
// policy or order other than on-demand + fcfs is configured — detokenized on another pool,
// and streamed back as SSE or returned whole. The HTTP threads never wait on the engine
// except for their own request's results.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "common/ordered_pool.h"
#include "common/status.h"
#include "common/tokenizer/tokenizer.h"
#include "router/chat_template.h"
#include "router/dispatcher.h"
#include "router/metrics.h"
#include "router/router_config.h"
#include "router/scheduling_loop.h"

namespace httplib {
class Server;
class Request;
class Response;
}  // namespace httplib

namespace strata::router {

struct ApiLimits;
class RequestStream;

class RouterServer {
 public:
  explicit RouterServer(RouterConfig config);
  ~RouterServer();

  // Loads the tokenizer, binds the ZeroMQ endpoint and the HTTP port (0 picks a free one).
  Status start();
  // Serves until stop() (from another thread or a signal handler's thread).
  void run();
  void stop();
  int port() const { return port_; }
  std::string zmq_endpoint() const { return dispatcher_ ? dispatcher_->endpoint() : ""; }

 private:
  void install_routes();
  void handle_generation(const httplib::Request& req, httplib::Response& res, int route);
  void handle_tokenize(const httplib::Request& req, httplib::Response& res);
  void handle_detokenize(const httplib::Request& req, httplib::Response& res);
  void handle_health(httplib::Response& res);
  void handle_ready(httplib::Response& res);
  void handle_models(httplib::Response& res);
  void handle_metrics(httplib::Response& res);
  // Limits from the first ready worker group; false when none is ready.
  bool current_limits(ApiLimits& limits, std::string& model_name) const;
  std::string served_model_name(const std::string& reported) const;
  // Stops engine request `id`: through the scheduling loop when there is one (it may still
  // be waiting there), else in the dispatcher.
  void abort_engine_request(uint64_t id);

  RouterConfig config_;
  std::unique_ptr<Tokenizer> tokenizer_;
  ChatTemplate chat_template_;
  RouterMetrics metrics_;
  std::unique_ptr<OrderedPool> tokenizer_pool_;
  std::unique_ptr<OrderedPool> detokenizer_pool_;
  std::unique_ptr<Dispatcher> dispatcher_;
  // Only with a non-default --admission-policy or --order; null: requests go straight to
  // dispatcher_->submit(). Declared after dispatcher_, which it uses.
  std::unique_ptr<SchedulingLoop> scheduling_loop_;
  std::unique_ptr<httplib::Server> http_;
  int port_ = 0;
  std::atomic<uint64_t> next_engine_id_{1};
  std::atomic<int64_t> in_flight_{0};
  int64_t started_unix_s_ = 0;
};

}  // namespace strata::router
