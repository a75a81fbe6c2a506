#include "router/server.h"

#include <nlohmann/json.hpp>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <optional>
#include <random>
#include <thread>

#include "router/api_error.h"
#include "router/body_budget.h"
#include "router/generation_response.h"
#include "router/http_server.h"
#include "router/openai_api.h"
#include "router/openai_response.h"
#include "router/request_features.h"
#include "router/request_stream.h"
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

constexpr int kIoThreads = 2;  // Asio threads of --port: a handful serve thousands of connections

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch()).count();
}

HttpResponse error_response(const ApiError& error) {
  HttpResponse res{.status = error.http_status, .body = error_body(error)};
  if (error.http_status == 429 || error.http_status == 503) res.set_header("Retry-After", "1");
  if (error.http_status == 401) res.set_header("WWW-Authenticate", "Bearer");
  return res;
}

HttpResponse json_response(std::string body) { return HttpResponse{.body = std::move(body)}; }

// The OpenAI error body for what the front door finds itself.
ApiError front_door_error(const RequestHead& head, int status, std::string_view why) {
  ApiError e{.http_status = status, .message = std::string(why)};
  switch (status) {
    case 404:
      e.message = fmt::format("no route {} {}; strata serves {}", head.method, head.path, fmt::join(kServedPaths, ", "));
      e.code = "not_found";
      break;
    case 413: e.code = "request_too_large"; break;
    case 429: e.type = "requests"; e.code = "rate_limit_exceeded"; break;
    case 500: return internal_server_error(why);
    case 503: e.type = "server_error"; e.code = "service_unavailable"; break;
    default: break;
  }
  return e;
}

// Holds a request's choices in the router's queue bound until the HTTP exchange ends (the
// answer is written, or the client goes away): the bound counts a
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

RouterServer::~RouterServer() {
  stop();
  // Their threads may still wake a connection: they end before the HTTP servers go.
  detokenizer_pool_.reset();
  tokenizer_pool_.reset();
}

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
  body_budget_ = std::make_unique<BodyBudget>(config_.max_body_bytes_in_flight);
  HttpServerSettings settings = http_settings(config_.port, "--port");
  settings.io_threads = kIoThreads;
  settings.handler_threads = config_.http_threads;
  settings.body_budget = body_budget_.get();
  http_ = std::make_unique<HttpServer>(settings, http_hooks(api_routes()));
  STRATA_ASSIGN_OR_RETURN(port_, http_->bind());
  spdlog::info("router listening on http://{}:{}, worker groups connect to {}", config_.host, port_,
               dispatcher_->endpoint());
  if (config_.probe_port == 0) return ok_status();
  // A listener and a thread of its own: a probe never waits behind --port's connections.
  HttpServerSettings probe_settings = http_settings(config_.probe_port, "--probe-port");
  probe_settings.max_body_bytes = 1024;
  probe_settings.handler_threads = 1;  // its routes run inline
  probe_http_ = std::make_unique<HttpServer>(probe_settings, http_hooks(probe_routes()));
  STRATA_ASSIGN_OR_RETURN(probe_port_, probe_http_->bind());
  spdlog::info("router probes (/health, /ready, /metrics) also on http://{}:{}", config_.host, probe_port_);
  probe_thread_ = std::thread([this] { probe_http_->run(); });
  return ok_status();
}

HttpServerSettings RouterServer::http_settings(int port, std::string flag) const {
  return HttpServerSettings{.host = config_.host,
                            .port = port,
                            .port_flag = std::move(flag),
                            .read_timeout_s = config_.read_timeout_s,
                            .keep_alive_timeout_s = config_.keep_alive_timeout_s,
                            .write_timeout_s = config_.write_timeout_s,
                            .max_connections = config_.max_connections,
                            .max_connections_per_client = config_.max_connections_per_client,
                            .max_body_bytes = static_cast<size_t>(config_.max_body_bytes),
                            .body_budget_wait = std::chrono::seconds(config_.read_timeout_s)};
}

void RouterServer::run() { http_->run(); }

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

std::vector<HttpRoute> RouterServer::api_routes() {
  auto post = [](std::string path, std::function<HttpResponse(HttpRequest&)> handler) {
    return HttpRoute{.method = "POST", .path = std::move(path), .blocking = true, .handler = std::move(handler)};
  };
  std::vector<HttpRoute> routes{
      post("/v1/completions", [this](HttpRequest& r) { return handle_generation(r, Route::kCompletions); }),
      post("/v1/chat/completions", [this](HttpRequest& r) { return handle_generation(r, Route::kChatCompletions); }),
      post("/tokenize", [this](HttpRequest& r) { return handle_tokenize(r); }),
      post("/detokenize", [this](HttpRequest& r) { return handle_detokenize(r); }),
      {.method = "GET", .path = "/v1/models", .handler = [this](HttpRequest&) { return handle_models(); }},
      {.method = "GET", .path = "/v1/models/", .handler = [this](HttpRequest& r) {
         return handle_model(r.head.path.substr(std::string_view("/v1/models/").size()));
       }},
      // CORS preflight: check_head already refused an origin that is not allowed.
      {.method = "OPTIONS", .path = "*", .handler = [](HttpRequest&) { return HttpResponse{.status = 204, .content_type = ""}; }},
  };
  for (HttpRoute& r : probe_routes()) routes.push_back(std::move(r));
  return routes;
}

std::vector<HttpRoute> RouterServer::probe_routes() {
  return {
      {.method = "GET", .path = "/health", .handler = [this](HttpRequest&) { return handle_health(); }},
      {.method = "GET", .path = "/ready", .handler = [this](HttpRequest&) { return handle_ready(); }},
      {.method = "GET", .path = "/metrics", .handler = [this](HttpRequest&) { return handle_metrics(); }},
  };
}

HttpServerHooks RouterServer::http_hooks(std::vector<HttpRoute> routes) {
  HttpServerHooks hooks{.routes = std::move(routes)};
  // On the request's head, before its body is read: the access checks.
  hooks.check_head = [this](const RequestHead& head, HttpResponse& cors) -> std::optional<HttpResponse> {
    for (auto& [name, value] : access_->cors_headers(head)) cors.set_header(name, value);
    if (std::optional<ApiError> error = access_->check(head)) return error_response(*error);
    return std::nullopt;
  };
  hooks.error_response = [](const RequestHead& head, int status, std::string_view why) {
    return error_response(front_door_error(head, status, why));
  };
  hooks.on_answer = [this](const RequestHead& head, int status) { metrics_.count_http(route_label(head.path), status); };
  return hooks;
}

// What parse_generation() hands on: the request and what it was validated against.
struct RouterServer::ParsedGeneration {
  GenerationRequest request;
  ApiLimits limits;
  std::string model_name;
};

HttpResponse RouterServer::handle_generation(HttpRequest& http, Route route) {
  const auto arrival = Clock::now();
  if (draining_.load()) return error_response(shutting_down_error());
  auto parsed = parse_generation(http.body, route);
  if (auto* error = std::get_if<ApiError>(&parsed)) return error_response(*error);
  ParsedGeneration& g = std::get<ParsedGeneration>(parsed);
  auto tokenized = tokenize_prompt(g.request, g.limits.max_model_len);
  http.release_body();  // what is left is the size of the prompt's ids
  if (auto* error = std::get_if<ApiError>(&tokenized)) return error_response(*error);
  std::vector<int32_t>& prompt_ids = std::get<std::vector<int32_t>>(tokenized);
  // The router's one length check; it also fills in max_tokens when the client left it out.
  if (auto error = fit_to_context(g.request, static_cast<int64_t>(prompt_ids.size()),
                                  g.limits.max_model_len)) {
    return error_response(*error);
  }
  auto submitted = submit_generation(g.request, std::move(prompt_ids), arrival);
  if (auto* error = std::get_if<ApiError>(&submitted)) return error_response(*error);
  std::shared_ptr<RequestStream> stream = std::move(std::get<std::shared_ptr<RequestStream>>(submitted));
  auto slot = std::make_shared<QueueSlot>(*scheduling_loop_, stream->engine_ids());

  const double timeout_s = g.request.timeout_s > 0 ? g.request.timeout_s : config_.scheduling.request_timeout_s;
  GenerationAnswer answer{
      .stream = std::move(stream),
      .ctx = make_response_context(g.request, g.model_name, unix_seconds()),
      .deadline = arrival + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s)),
      .abort_engine_request = [this](uint64_t id) { abort_engine_request(id); },
      .hold = std::move(slot)};
  HttpResponse res;
  if (g.request.stream) {
    res.content_type = "text/event-stream";
    res.set_header("Cache-Control", "no-cache");
    res.later = streamed_answer(std::move(answer));
  } else {
    res.later = whole_answer(std::move(answer));
  }
  return res;
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

HttpResponse RouterServer::handle_tokenize(HttpRequest& body) {
  ApiLimits limits;
  std::string model_name;
  if (!current_limits(limits, model_name)) {
    limits.vocab_size = tokenizer_->vocab_size();
    limits.max_model_len = 0;
  }
  auto parsed = parse_tokenize_request(body.body, limits);
  if (auto* error = std::get_if<ApiError>(&parsed)) return error_response(*error);
  const TokenizeRequest& t = std::get<TokenizeRequest>(parsed);
  auto ids = tokenizer_pool_->run(0, [&]() -> StatusOr<std::vector<int32_t>> {
    if (t.prompt) return tokenizer_->encode(*t.prompt, t.add_special_tokens);
    const ChatRenderOptions options{.add_generation_prompt = t.add_generation_prompt,
                                    .tools_json = t.tools_json,
                                    .chat_template_kwargs_json = t.chat_template_kwargs_json};
    STRATA_ASSIGN_OR_RETURN(RenderedChat chat, render_chat(chat_template_, t.messages, options));
    return tokenizer_->encode(chat.text, chat.add_special_tokens && t.add_special_tokens);
  });
  if (!ids.ok()) return error_response(api_error_from_status(ids.status(), "messages"));
  return json_response(tokenize_response(*ids, limits.max_model_len));
}

HttpResponse RouterServer::handle_detokenize(HttpRequest& body) {
  ApiLimits limits;
  std::string model_name;
  if (!current_limits(limits, model_name)) limits.vocab_size = tokenizer_->vocab_size();
  auto parsed = parse_detokenize_request(body.body, limits);
  if (auto* error = std::get_if<ApiError>(&parsed)) return error_response(*error);
  const auto& ids = std::get<DetokenizeRequest>(parsed).token_ids;
  const std::string text = tokenizer_pool_->run(0, [&] { return tokenizer_->decode(ids, true); });
  return json_response(detokenize_response(text));
}

HttpResponse RouterServer::handle_models() {
  ApiLimits limits;
  std::string model_name;
  if (!current_limits(limits, model_name)) return error_response(no_worker_error());
  return json_response(models_response(model_name, started_unix_s_, limits.max_model_len));
}

// GET /v1/models/{id} (the openai client's models.retrieve): the served model, else 404.
HttpResponse RouterServer::handle_model(const std::string& id) {
  ApiLimits limits;
  std::string model_name;
  if (!current_limits(limits, model_name)) return error_response(no_worker_error());
  if (id != model_name) return error_response(model_not_found_error(id, model_name));
  return json_response(model_response(model_name, started_unix_s_, limits.max_model_len));
}

HttpResponse RouterServer::handle_health() {
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
    return HttpResponse{.status = 503, .body = body.dump()};
  }
  return json_response(body.dump());
}

HttpResponse RouterServer::handle_ready() {
  const bool draining = draining_.load();
  const bool ready = !draining && dispatcher_->any_ready();
  nlohmann::json body{{"ready", ready}};
  if (draining) body["draining"] = true;
  return HttpResponse{.status = ready ? 200 : 503, .body = body.dump()};
}

HttpResponse RouterServer::handle_metrics() {
  metrics_.set_queue_length(static_cast<int64_t>(scheduling_loop_->num_unfinished()));
  for (const GroupInfo& g : dispatcher_->groups()) {
    metrics_.set_group(g.group_id, g.kv);
  }
  return HttpResponse{.content_type = "text/plain; version=0.0.4", .body = metrics_.serialize()};
}

}  // namespace strata::router
