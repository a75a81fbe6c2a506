// RouterServer: the router process. Its HttpServer (router/http_server.h) holds the
// connections on a few I/O threads and runs the POST routes on --http-threads. A generation request takes one path, in named steps: parse (validated against
// the first ready group's limits), tokenize (on a pool), the one length check
// (fit_to_context), submit (every choice to the RouterScheduler's SchedulingLoop, which holds
// the queue bound, admits and places it, and hands it to the Dispatcher for the chosen
// group), then respond — detokenized on another pool, streamed as SSE or returned whole
// (generation_response.h) as the stream wakes the connection. No thread waits on the engine.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "common/ordered_pool.h"
#include "common/status.h"
#include "common/tokenizer/tokenizer.h"
#include "router/api_error.h"
#include "router/api_types.h"
#include "router/chat_template.h"
#include "router/dispatcher.h"
#include "router/http_access.h"
#include "router/metrics.h"
#include "router/router_config.h"
#include "router/scheduling_loop.h"

namespace strata::router {

class BodyBudget;  // router/body_budget.h
class HttpServer;  // router/http_server.h
struct HttpServerSettings;
struct HttpServerHooks;
struct HttpRoute;
struct HttpRequest;
struct HttpResponse;

struct ApiLimits;
struct ResponseContext;
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
  // Graceful drain (SIGTERM): new generation requests get 503 and /ready says not ready,
  // while the requests in flight run for up to --drain-timeout-s; those still running then
  // end with an error (streams with an error event and [DONE]). Then stop().
  void drain();
  int port() const { return port_; }
  int probe_port() const { return probe_port_; }
  std::string zmq_endpoint() const { return dispatcher_ ? dispatcher_->endpoint() : ""; }

 private:
  using TimePoint = std::chrono::steady_clock::time_point;
  struct ParsedGeneration;

  Status load_tokenizer_and_template();
  Status start_scheduling();  // the dispatcher and the scheduling loop
  Status start_http();
  HttpServerSettings http_settings(int port, std::string flag) const;
  std::vector<HttpRoute> api_routes();    // --port: the API and the probes
  std::vector<HttpRoute> probe_routes();  // /health, /ready, /metrics
  HttpServerHooks http_hooks(std::vector<HttpRoute> routes);

  // POST /v1/completions and /v1/chat/completions, in the steps below; the answer comes
  // later (generation_response.h).
  HttpResponse handle_generation(HttpRequest& http, Route route);
  std::variant<ParsedGeneration, ApiError> parse_generation(const std::string& body, Route route) const;
  // The prompt's ids, or a context-length error as soon as a prefix has more than
  // max_prompt_tokens (common/tokenizer/bounded_encode.h).
  std::variant<std::vector<int32_t>, ApiError> tokenize_prompt(const GenerationRequest& request,
                                                               int64_t max_model_len) const;
  // Enqueues every choice with the scheduling loop; the stream then receives their outputs.
  std::variant<std::shared_ptr<RequestStream>, ApiError> submit_generation(
      const GenerationRequest& request, std::vector<int32_t> prompt_ids, TimePoint arrival);

  HttpResponse handle_tokenize(HttpRequest& http);
  HttpResponse handle_detokenize(HttpRequest& http);
  HttpResponse handle_health();
  HttpResponse handle_ready();
  HttpResponse handle_models();
  HttpResponse handle_model(const std::string& id);
  HttpResponse handle_metrics();
  // Limits from the first ready worker group; false when none is ready.
  bool current_limits(ApiLimits& limits, std::string& model_name) const;
  std::string served_model_name(const std::string& reported) const;
  // Stops engine request `id`, waiting in the scheduling loop or running in a worker.
  void abort_engine_request(uint64_t id);

  RouterConfig config_;
  std::unique_ptr<HttpAccess> access_;
  std::unique_ptr<Tokenizer> tokenizer_;
  ChatTemplate chat_template_;
  RouterMetrics metrics_;
  std::unique_ptr<OrderedPool> tokenizer_pool_;
  std::unique_ptr<OrderedPool> detokenizer_pool_;
  std::unique_ptr<Dispatcher> dispatcher_;
  // Every generation request goes through it. Declared after dispatcher_, which it uses.
  std::unique_ptr<SchedulingLoop> scheduling_loop_;
  std::unique_ptr<BodyBudget> body_budget_;  // the bodies of --port's POST routes
  std::unique_ptr<HttpServer> http_;
  int port_ = 0;
  std::unique_ptr<HttpServer> probe_http_;  // --probe-port, with a thread of its own
  std::thread probe_thread_;
  int probe_port_ = 0;
  std::atomic<uint64_t> next_engine_id_{1};
  std::atomic<bool> draining_{false};
  std::mutex stop_mu_;
  int64_t started_unix_s_ = 0;
};

}  // namespace strata::router
