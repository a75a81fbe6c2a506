#include "router/server.h"

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <optional>
#include <random>
#include <thread>

#include "router/api_error.h"
#include "router/body_budget.h"
#include "router/http_listener.h"
#include "router/openai_api.h"
#include "router/openai_response.h"
#include "router/request_body.h"
#include "router/request_features.h"
#include "router/request_stream.h"
#include "router/sse_response.h"
#include "router/scheduling/scheduler_config.h"
#include "common/model_path.h"
#include "common/tokenizer/bounded_encode.h"

namespace strata::router {
namespace {

// The paths served; /metrics labels requests by these, never by a client's raw path.
constexpr std::string_view kServedPaths[] = {"/v1/completions", "/v1/chat/completions", "/v1/models",
                                             "/v1/models/{id}", "/tokenize", "/detokenize",
                                             "/health", "/ready", "/metrics"};

// Bounded by kServedPaths: 20,000 random URLs are one label, not 20,000 series.
std::string route_label(const std::string& path) {
  if (path.rfind("/v1/models/", 0) == 0) return "/v1/models/{id}";
  for (std::string_view p : kServedPaths) {
    if (path == p) return path;
  }
  return "unmatched";
}

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch()).count();
}

void send_error(httplib::Response& res, const ApiError& error) {
  res.status = error.http_status;
  if (error.http_status == 429 || error.http_status == 503) res.set_header("Retry-After", "1");
  res.set_content(error_body(error), "application/json");
}

RequestHead request_head(const httplib::Request& req) {
  RequestHead head{.method = req.method, .path = req.path, .headers = {}};
  head.headers.assign(req.headers.begin(), req.headers.end());
  return head;
}

void send_json(httplib::Response& res, std::string body) {
  res.status = 200;
  res.set_content(std::move(body), "application/json");
}

// Holds a request's choices in the router's queue bound until the HTTP exchange ends (the
// handler returns, or the stream's content provider is released): the bound counts a
// request until its client has the answer, not only until the worker is done.
class QueueSlot {
 public:
  QueueSlot(SchedulingLoop& loop, std::vector<uint64_t> ids) : loop_(loop), ids_(std::move(ids)) {}
  ~QueueSlot() {
    for (uint64_t id : ids_) loop_.release(id);
  }
  QueueSlot(const QueueSlot&) = delete;
  QueueSlot& operator=(const QueueSlot&) = delete;

 private:
  SchedulingLoop& loop_;
  const std::vector<uint64_t> ids_;
};

// The engine request of choice `index` of `request`.
wire::WireRequest wire_request(const GenerationRequest& request, const std::vector<int32_t>& prompt_ids,
                               uint64_t id, int index, std::random_device& random) {
  wire::WireRequest wr{.id = id, .prompt_ids = prompt_ids, .sampling = request.sampling};
  // n choices share a seed's stream of seeds: choice i uses seed + i.
  wr.sampling.seed = request.sampling.seed ? *request.sampling.seed + static_cast<uint64_t>(index)
                                           : (static_cast<uint64_t>(random()) << 32 | random());
  if (request.logprobs) wr.sampling.logprobs = request.top_logprobs;
  return wr;
}

}  // namespace

RouterServer::RouterServer(RouterConfig config) : config_(std::move(config)) {}

RouterServer::~RouterServer() { stop(); }

Status RouterServer::start() {
  started_unix_s_ = unix_seconds();
  STRATA_ASSIGN_OR_RETURN(HttpAccess access, HttpAccess::create(config_.access, config_.host));
  access_ = std::make_unique<HttpAccess>(std::move(access));
  STRATA_RETURN_IF_ERROR(load_tokenizer_and_template());
  tokenizer_pool_ = std::make_unique<OrderedPool>(config_.tokenizer_threads);
  detokenizer_pool_ = std::make_unique<OrderedPool>(config_.detokenizer_threads);
  STRATA_RETURN_IF_ERROR(start_scheduling());
  return start_http();
}

Status RouterServer::load_tokenizer_and_template() {
  // The model's own files give the tokenizer and the chat template: a wrong --model is
  // reported as such, before either is looked for.
  STRATA_ASSIGN_OR_RETURN(const std::string tokenizer_path,
                          resolve_tokenizer_path(config_.model, config_.tokenizer));
  STRATA_ASSIGN_OR_RETURN(tokenizer_, load_tokenizer(tokenizer_path));
  if (config_.model.rfind("builtin:", 0) != 0) {
    STRATA_ASSIGN_OR_RETURN(chat_template_, load_chat_template(config_.model, config_.chat_template));
    return ok_status();
  }
  chat_template_ = default_chat_template(ChatTemplateKind::kPlain);
  if (!config_.chat_template.empty()) {
    auto kind = chat_template_kind_from_name(config_.chat_template);
    if (!kind) return invalid_argument("unknown --chat-template `{}`", config_.chat_template);
    chat_template_ = default_chat_template(*kind);
  }
  return ok_status();
}

Status RouterServer::start_scheduling() {
  // Parsed first: a bad policy name stops the router before it binds anything.
  STRATA_ASSIGN_OR_RETURN(RouterSchedulerConfig scheduler_config, scheduler_config_from(config_));
  DispatcherConfig dispatcher_config = config_.dispatcher;
  dispatcher_config.tokenizer_vocab_size = tokenizer_->vocab_size();
  dispatcher_config.on_step = [this](const std::string& group, double seconds, int32_t tokens) {
    metrics_.observe_step(group, seconds, tokens);
  };
  dispatcher_ = std::make_unique<Dispatcher>(dispatcher_config);
  STRATA_RETURN_IF_ERROR(dispatcher_->start());
  SchedulingLoopOptions loop_options{.predictor_snapshot = config_.predictor_snapshot};
  loop_options.on_prediction = [this](int64_t predicted, int64_t actual) {
    metrics_.observe_length_prediction(predicted, actual);
  };
  loop_options.on_quantile = [this](double q) { metrics_.set_admission_quantile(q); };
  scheduling_loop_ = std::make_unique<SchedulingLoop>(std::move(scheduler_config), *dispatcher_,
                                                      std::move(loop_options));
  if (Status st = scheduling_loop_->start(); !st.ok()) {
    return invalid_argument("--predictor-snapshot: {}", st.message());
  }
  return ok_status();
}

Status RouterServer::start_http() {
  const HttpListenerSettings settings{.threads = config_.http_threads, .read_timeout_s = config_.read_timeout_s,
                                      .max_body_bytes = config_.max_body_bytes};
  http_ = make_http_server(settings);
  body_budget_ = std::make_unique<BodyBudget>(config_.max_body_bytes_in_flight);
  install_routes();
  STRATA_ASSIGN_OR_RETURN(port_, bind_http_server(*http_, config_.host, config_.port, "--port"));
  spdlog::info("router listening on http://{}:{}, worker groups connect to {}", config_.host, port_,
               dispatcher_->endpoint());
  if (config_.probe_port == 0) return ok_status();
  // Threads of its own: a probe never waits behind the streams that hold --http-threads.
  probe_http_ = make_http_server({.threads = 4, .read_timeout_s = config_.read_timeout_s, .max_body_bytes = 1024});
  install_probe_routes(*probe_http_);
  install_error_handlers(*probe_http_);
  STRATA_ASSIGN_OR_RETURN(probe_port_, bind_http_server(*probe_http_, config_.host, config_.probe_port,
                                                        "--probe-port"));
  spdlog::info("router probes (/health, /ready, /metrics) also on http://{}:{}", config_.host, probe_port_);
  probe_thread_ = std::thread([this] { probe_http_->listen_after_bind(); });
  return ok_status();
}

void RouterServer::run() { http_->listen_after_bind(); }

void RouterServer::stop() {
  // From a signal's thread and from drain() at once: their joins must not overlap.
  std::lock_guard lock(stop_mu_);
  if (http_) http_->stop();
  if (probe_http_) probe_http_->stop();
  if (probe_thread_.joinable()) probe_thread_.join();
  if (scheduling_loop_) scheduling_loop_->stop();
  if (dispatcher_) dispatcher_->stop();
}

void RouterServer::drain() {
  using namespace std::chrono_literals;
  draining_.store(true);
  const auto wait_until_answered = [this](Clock::time_point deadline) {
    while (scheduling_loop_->num_unfinished() > 0 && Clock::now() < deadline) std::this_thread::sleep_for(20ms);
    return scheduling_loop_->num_unfinished() == 0;
  };
  spdlog::info("router: draining: {} requests in flight may take up to {} s", scheduling_loop_->num_unfinished(),
               config_.drain_timeout_s);
  if (!wait_until_answered(Clock::now() + std::chrono::seconds(config_.drain_timeout_s))) {
    const std::string message = fmt::format(
        "the server is shutting down and the request did not finish within its drain time ({} s); "
        "retry the request", config_.drain_timeout_s);
    spdlog::warn("router: drain time over; ending {} requests with an error", scheduling_loop_->num_unfinished());
    scheduling_loop_->stop(message);
    dispatcher_->fail_in_flight(message);
    // Their answers (an error event and [DONE] for a stream) still have to be written.
    wait_until_answered(Clock::now() + 5s);
  }
  stop();
}

void RouterServer::abort_engine_request(uint64_t id) { scheduling_loop_->abort(id); }

std::string RouterServer::served_model_name(const std::string& reported) const {
  return config_.served_model_name.empty() ? reported : config_.served_model_name;
}

bool RouterServer::current_limits(ApiLimits& limits, std::string& model_name) const {
  for (const GroupInfo& g : dispatcher_->groups()) {
    if (!g.alive || !g.ready) continue;
    limits.max_model_len = g.max_model_len;
    limits.vocab_size = static_cast<int32_t>(g.vocab_size);
    model_name = served_model_name(g.model_name);
    limits.served_model_name = model_name;
    return true;
  }
  return false;
}

void RouterServer::install_routes() {
  httplib::Server& s = *http_;
  // Bodies are read by read_request_body, under the body budget, never before (httplib's
  // content-reader handlers): their size is bounded one by one and all together.
  const BodyLimits limits{.max_body_bytes = static_cast<size_t>(config_.max_body_bytes),
                          .wait = std::chrono::seconds(config_.read_timeout_s)};
  auto post = [this, limits](auto handler) -> httplib::Server::HandlerWithContentReader {
    return [this, limits, handler](const httplib::Request& req, httplib::Response& res,
                                   const httplib::ContentReader& reader) {
      auto body = read_request_body(req, reader, *body_budget_, limits);
      if (auto* error = std::get_if<ApiError>(&body)) {
        res.set_header("Connection", "close");  // what is left of the body cannot be skipped
        return send_error(res, *error);
      }
      handler(std::get<IncomingBody>(body), res);
    };
  };
  s.Post("/v1/completions", post([this](IncomingBody& body, httplib::Response& res) {
    handle_generation(body, res, static_cast<int>(Route::kCompletions));
  }));
  s.Post("/v1/chat/completions", post([this](IncomingBody& body, httplib::Response& res) {
    handle_generation(body, res, static_cast<int>(Route::kChatCompletions));
  }));
  s.Post("/tokenize", post([this](IncomingBody& body, httplib::Response& res) { handle_tokenize(body, res); }));
  s.Post("/detokenize", post([this](IncomingBody& body, httplib::Response& res) { handle_detokenize(body, res); }));
  s.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) { handle_models(res); });
  s.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
    handle_model(req.matches[1].str(), res);
  });
  install_probe_routes(s);
  // CORS preflight: the pre-routing check already refused an origin that is not allowed.
  s.Options(".*", [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
  install_error_handlers(s);
}

void RouterServer::install_probe_routes(httplib::Server& s) {
  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) { handle_health(res); });
  s.Get("/ready", [this](const httplib::Request&, httplib::Response& res) { handle_ready(res); });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) { handle_metrics(res); });
}

void RouterServer::install_error_handlers(httplib::Server& s) {
  // Runs on the request's head, before its body is read: the access checks, and a
  // Content-Length that is not a decimal byte count (httplib reads "-5" as 2^64 - 5 and
  // would wait for the read timeout).
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    const RequestHead head = request_head(req);
    for (auto& [name, value] : access_->cors_headers(head)) res.set_header(name, value);
    std::optional<ApiError> error = access_->check(head);
    if (!error && req.has_header("Content-Length") && !declared_content_length(req)) {
      error = ApiError{.message = fmt::format("the Content-Length header must be a decimal byte count. Given: `{}`",
                                              req.get_header_value("Content-Length"))};
    }
    if (!error) return httplib::Server::HandlerResponse::Unhandled;
    // A body left unread means the connection cannot carry another request.
    const bool has_body = req.has_header("Content-Length") || req.has_header("Transfer-Encoding");
    if (has_body && req.get_header_value("Connection") != "close") res.set_header("Connection", "close");
    if (error->http_status == 401) res.set_header("WWW-Authenticate", "Bearer");
    send_error(res, *error);
    return httplib::Server::HandlerResponse::Handled;
  });

  // Every error httplib produces itself (unknown route, 413, malformed request line) gets
  // an OpenAI error body too.
  s.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    ApiError e{.http_status = res.status};
    if (res.status == 413) {
      e = body_too_large_error(declared_content_length(req).value_or(req.body.size()),
                               static_cast<size_t>(config_.max_body_bytes));
    } else if (res.status == 404) {
      e.message = fmt::format("no route {} {}; strata serves {}", req.method, req.path,
                              fmt::join(kServedPaths, ", "));
      e.code = "not_found";
    } else {
      e.message = fmt::format("the HTTP request could not be processed (status {})", res.status);
    }
    res.set_content(error_body(e), "application/json");
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("router: unhandled exception: {}", what);
    send_error(res, internal_server_error(what));
  });
  s.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics_.count_http(route_label(req.path), res.status);
  });
}

// What parse_generation() hands on: the request and what it was validated against.
struct RouterServer::ParsedGeneration {
  GenerationRequest request;
  ApiLimits limits;
  std::string model_name;
};

void RouterServer::handle_generation(IncomingBody& body, httplib::Response& res, int route_int) {
  const auto arrival = Clock::now();
  if (draining_.load()) return send_error(res, shutting_down_error());
  auto parsed = parse_generation(body.text, static_cast<Route>(route_int));
  if (auto* error = std::get_if<ApiError>(&parsed)) return send_error(res, *error);
  ParsedGeneration& g = std::get<ParsedGeneration>(parsed);
  auto tokenized = tokenize_prompt(g.request, g.limits.max_model_len);
  body.release();  // what is left is the size of the prompt's ids
  if (auto* error = std::get_if<ApiError>(&tokenized)) return send_error(res, *error);
  std::vector<int32_t>& prompt_ids = std::get<std::vector<int32_t>>(tokenized);
  // The router's one length check; it also fills in max_tokens when the client left it out.
  if (auto error = fit_to_context(g.request, static_cast<int64_t>(prompt_ids.size()),
                                  g.limits.max_model_len)) {
    return send_error(res, *error);
  }
  auto submitted = submit_generation(g.request, std::move(prompt_ids), arrival);
  if (auto* error = std::get_if<ApiError>(&submitted)) return send_error(res, *error);
  std::shared_ptr<RequestStream> stream = std::move(std::get<std::shared_ptr<RequestStream>>(submitted));
  auto slot = std::make_shared<QueueSlot>(*scheduling_loop_, stream->engine_ids());

  const ResponseContext ctx = make_response_context(g.request, g.model_name, unix_seconds());
  const double timeout_s = g.request.timeout_s > 0 ? g.request.timeout_s : config_.scheduling.request_timeout_s;
  const auto deadline =
      arrival + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s));
  if (g.request.stream) {
    return stream_response(res, std::move(stream), ctx, deadline,
                           [this](uint64_t id) { abort_engine_request(id); }, std::move(slot));
  }
  respond_whole(res, *stream, ctx, deadline);
}

std::variant<RouterServer::ParsedGeneration, ApiError> RouterServer::parse_generation(
    const std::string& body, Route route) const {
  ParsedGeneration g;
  if (!current_limits(g.limits, g.model_name)) return no_worker_error();
  auto parsed = parse_generation_request(body, route, g.limits);
  if (auto* error = std::get_if<ApiError>(&parsed)) return std::move(*error);
  g.request = std::move(std::get<GenerationRequest>(parsed));
  return g;
}

std::variant<std::vector<int32_t>, ApiError> RouterServer::tokenize_prompt(const GenerationRequest& request,
                                                                           int64_t max_model_len) const {
  // The most prompt tokens that could fit with the output (fit_to_context has the last word).
  const int64_t min_output_tokens = request.max_tokens_given ? request.sampling.max_tokens : 1;
  const int64_t max_prompt_tokens = max_model_len - min_output_tokens;
  // Chat goes through the model's chat template first. The pool key keeps tokenizing in
  // arrival order.
  const Route route = request.route;
  auto tokenized = tokenizer_pool_->run(next_engine_id_.load(), [&]() -> StatusOr<BoundedEncoding> {
    if (request.prompt_ids) return BoundedEncoding{.ids = *request.prompt_ids};
    if (route == Route::kChatCompletions) {
      const ChatRenderOptions options{.add_generation_prompt = request.add_generation_prompt,
                                      .tools_json = request.tools_json,
                                      .chat_template_kwargs_json = request.chat_template_kwargs_json};
      STRATA_ASSIGN_OR_RETURN(RenderedChat chat, render_chat(chat_template_, request.messages, options));
      return encode_up_to(*tokenizer_, chat.text, chat.add_special_tokens, max_prompt_tokens);
    }
    return encode_up_to(*tokenizer_, *request.prompt_text, true, max_prompt_tokens);
  });
  if (!tokenized.ok()) return api_error_from_status(tokenized.status(), "messages");
  if (!tokenized->within) {
    ApiError e = context_length_error(static_cast<int64_t>(tokenized->ids.size()), min_output_tokens, max_model_len);
    e.message += fmt::format(" (the prompt has at least {} tokens: its first {} bytes alone)",
                             tokenized->ids.size(), tokenized->encoded_bytes);
    return e;
  }
  if (tokenized->ids.empty()) {
    return ApiError{.message = "the prompt encodes to no tokens; give a non-empty prompt",
                    .param = route == Route::kChatCompletions ? "messages" : "prompt"};
  }
  return std::move(tokenized->ids);
}

std::variant<std::shared_ptr<RequestStream>, ApiError> RouterServer::submit_generation(
    const GenerationRequest& request, std::vector<int32_t> prompt_ids, Clock::time_point arrival) {
  const auto prompt_len = static_cast<int64_t>(prompt_ids.size());
  auto stream = std::make_shared<RequestStream>(request, std::move(prompt_ids), *tokenizer_,
                                                metrics_, arrival);
  const uint64_t first_id = next_engine_id_.fetch_add(static_cast<uint64_t>(request.n));
  std::vector<uint64_t> ids;
  for (int i = 0; i < request.n; ++i) ids.push_back(first_id + static_cast<uint64_t>(i));
  stream->set_engine_ids(ids);
  const SchedulerRequest scheduling{.features = request_features(request, prompt_len),
                                    .prefix_hashes = chain_block_hashes(stream->prompt_ids(), kPrefixIndexBlockTokens),
                                    .priority = request.priority,
                                    .timeout_s = request.timeout_s};
  std::random_device random;
  std::vector<SchedulingLoop::Submission> choices;
  for (int i = 0; i < request.n; ++i) {
    OutputCallback on_output = [this, stream, i](const wire::TokenOutput& output) {
      detokenizer_pool_->submit(output.id, [this, stream, i, output] {
        stream->on_output(i, output, [this](uint64_t id) { abort_engine_request(id); });
      });
    };
    choices.push_back({.request = wire_request(request, stream->prompt_ids(), ids[static_cast<size_t>(i)], i, random),
                       .scheduling = scheduling,
                       .on_output = std::move(on_output)});
  }
  // All choices or none: the scheduler's queue bound answers for the whole request (429).
  const Status st = scheduling_loop_->enqueue(std::move(choices));
  metrics_.observe_queue(std::chrono::duration<double>(Clock::now() - arrival).count());
  if (!st.ok()) return api_error_from_status(st);
  metrics_.count_tokens(prompt_len * request.n, 0);
  return stream;
}

void RouterServer::respond_whole(httplib::Response& res, RequestStream& stream,
                                 const ResponseContext& ctx, Clock::time_point deadline) {
  if (!stream.wait_finished(deadline)) {
    for (uint64_t id : stream.unfinished_engine_ids()) abort_engine_request(id);
    stream.wait_finished(Clock::now() + std::chrono::seconds(5));
  }
  if (auto error = stream.error()) {
    ApiError e = no_worker_error();
    e.message = *error;
    return send_error(res, e);
  }
  const auto choices = stream.final_choices();
  const Usage usage = stream.usage();
  send_json(res, ctx.route == Route::kCompletions
                     ? completion_response(ctx, choices, usage, stream.prompt_ids())
                     : chat_response(ctx, choices, usage, stream.prompt_ids()));
}

void RouterServer::handle_tokenize(IncomingBody& body, httplib::Response& res) {
  ApiLimits limits;
  std::string model_name;
  if (!current_limits(limits, model_name)) {
    limits.vocab_size = tokenizer_->vocab_size();
    limits.max_model_len = 0;
  }
  auto parsed = parse_tokenize_request(body.text, limits);
  if (auto* error = std::get_if<ApiError>(&parsed)) return send_error(res, *error);
  const TokenizeRequest& t = std::get<TokenizeRequest>(parsed);
  auto ids = tokenizer_pool_->run(0, [&]() -> StatusOr<std::vector<int32_t>> {
    if (t.prompt) return tokenizer_->encode(*t.prompt, t.add_special_tokens);
    const ChatRenderOptions options{.add_generation_prompt = t.add_generation_prompt,
                                    .tools_json = t.tools_json,
                                    .chat_template_kwargs_json = t.chat_template_kwargs_json};
    STRATA_ASSIGN_OR_RETURN(RenderedChat chat, render_chat(chat_template_, t.messages, options));
    return tokenizer_->encode(chat.text, chat.add_special_tokens && t.add_special_tokens);
  });
  if (!ids.ok()) return send_error(res, api_error_from_status(ids.status(), "messages"));
  send_json(res, tokenize_response(*ids, limits.max_model_len));
}

void RouterServer::handle_detokenize(IncomingBody& body, httplib::Response& res) {
  ApiLimits limits;
  std::string model_name;
  if (!current_limits(limits, model_name)) limits.vocab_size = tokenizer_->vocab_size();
  auto parsed = parse_detokenize_request(body.text, limits);
  if (auto* error = std::get_if<ApiError>(&parsed)) return send_error(res, *error);
  const auto& ids = std::get<DetokenizeRequest>(parsed).token_ids;
  const std::string text = tokenizer_pool_->run(0, [&] { return tokenizer_->decode(ids, true); });
  send_json(res, detokenize_response(text));
}

void RouterServer::handle_models(httplib::Response& res) {
  ApiLimits limits;
  std::string model_name;
  if (!current_limits(limits, model_name)) return send_error(res, no_worker_error());
  send_json(res, models_response(model_name, started_unix_s_, limits.max_model_len));
}

// GET /v1/models/{id} (the openai client's models.retrieve): the served model, else 404.
void RouterServer::handle_model(const std::string& id, httplib::Response& res) {
  ApiLimits limits;
  std::string model_name;
  if (!current_limits(limits, model_name)) return send_error(res, no_worker_error());
  if (id != model_name) return send_error(res, model_not_found_error(id, model_name));
  send_json(res, model_response(model_name, started_unix_s_, limits.max_model_len));
}

void RouterServer::handle_health(httplib::Response& res) {
  nlohmann::json body = {{"status", "ok"}, {"groups", nlohmann::json::array()}};
  bool healthy = true;
  const auto groups = dispatcher_->groups();
  for (const GroupInfo& g : groups) {
    body["groups"].push_back({{"id", g.group_id}, {"alive", g.alive}, {"ready", g.ready},
                              {"ms_since_last_message", g.ms_since_last_message}});
    healthy = healthy && g.alive;
  }
  if (groups.empty() || !healthy) {
    body["status"] = groups.empty() ? "no worker group has connected" : "a worker group stopped answering";
    res.status = 503;
  }
  res.set_content(body.dump(), "application/json");
}

void RouterServer::handle_ready(httplib::Response& res) {
  const bool draining = draining_.load();
  const bool ready = !draining && dispatcher_->any_ready();
  res.status = ready ? 200 : 503;
  nlohmann::json body{{"ready", ready}};
  if (draining) body["draining"] = true;
  res.set_content(body.dump(), "application/json");
}

void RouterServer::handle_metrics(httplib::Response& res) {
  metrics_.set_queue_length(static_cast<int64_t>(scheduling_loop_->num_unfinished()));
  for (const GroupInfo& g : dispatcher_->groups()) {
    metrics_.set_group(g.group_id, g.kv);
  }
  res.set_content(metrics_.serialize(), "text/plain; version=0.0.4");
}

}  // namespace strata::router
