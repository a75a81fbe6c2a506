#include "tools/bench/sse_client.h"

#include <algorithm>
#include <chrono>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace strata::bench {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::unique_ptr<httplib::Client> make_client(const Endpoint& e, double timeout_s) {
  auto c = std::make_unique<httplib::Client>(e.host, e.port);
  const auto timeout = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::duration<double>(timeout_s));
  c->set_connection_timeout(std::chrono::seconds(10));
  c->set_read_timeout(timeout);
  c->set_write_timeout(timeout);
  c->set_keep_alive(true);
  c->set_tcp_nodelay(true);  // else Nagle + delayed ACK add 40 ms to a reused connection's request
  return c;
}

// Splits the SSE byte stream into `data:` payloads, across chunk boundaries.
class SseParser {
 public:
  template <typename OnData>
  void feed(const char* data, size_t size, OnData&& on_data) {
    buffer_.append(data, size);
    size_t start = 0;
    for (;;) {
      const size_t nl = buffer_.find('\n', start);
      if (nl == std::string::npos) break;
      std::string_view line(buffer_.data() + start, nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.starts_with("data:")) {
        line.remove_prefix(5);
        if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
        on_data(line);
      }
      start = nl + 1;
    }
    buffer_.erase(0, start);
  }

 private:
  std::string buffer_;
};

}  // namespace

StatusOr<Endpoint> parse_endpoint(const std::string& url) {
  std::string rest = url;
  if (rest.starts_with("http://")) {
    rest = rest.substr(7);
  } else if (rest.find("://") != std::string::npos) {
    return invalid_argument("--url `{}`: only http:// is supported (no TLS); e.g. http://127.0.0.1:8000", url);
  }
  Endpoint e;
  const size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    e.prefix = rest.substr(slash);
    while (!e.prefix.empty() && e.prefix.back() == '/') e.prefix.pop_back();
    rest = rest.substr(0, slash);
  }
  const size_t colon = rest.rfind(':');
  if (colon != std::string::npos) {
    try {
      e.port = std::stoi(rest.substr(colon + 1));
    } catch (...) {
      return invalid_argument("--url `{}`: the port `{}` is not a number", url, rest.substr(colon + 1));
    }
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return invalid_argument("--url `{}` names no host; e.g. http://127.0.0.1:8000", url);
  if (e.port <= 0 || e.port > 65535) return out_of_range("--url `{}`: port must be 1..65535, got {}", url, e.port);
  e.host = rest;
  return e;
}

struct StreamClient::Impl {
  Endpoint endpoint;
  ClientOptions options;
  std::unique_ptr<httplib::Client> client;
};

StreamClient::StreamClient(const Endpoint& endpoint, ClientOptions options)
    : impl_(std::make_unique<Impl>(Impl{endpoint, std::move(options), nullptr})) {
  impl_->client = make_client(endpoint, impl_->options.timeout_s);
}

StreamClient::~StreamClient() = default;

namespace {

json request_body(const RequestSpec& spec, const ClientOptions& options) {
  json body = {{"prompt", spec.prompt_ids},
               {"max_tokens", std::max(spec.output_tokens, spec.max_tokens_cap)},
               {"ignore_eos", true},
               {"temperature", 0.0},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  if (spec.max_tokens_cap > spec.output_tokens) body["stop_after_tokens"] = spec.output_tokens;
  if (!options.model.empty()) body["model"] = options.model;
  if (options.return_token_ids) body["return_token_ids"] = true;
  return body;
}

// Tokens one streamed choice carries: its token ids when the server returns them, else one
// per non-empty text or content delta.
int32_t tokens_in_choice(const json& c) {
  if (auto ids = c.find("token_ids"); ids != c.end() && ids->is_array()) {
    return static_cast<int32_t>(ids->size());
  }
  if (auto text = c.find("text"); text != c.end() && text->is_string() &&
                                  !text->get_ref<const std::string&>().empty()) {
    return 1;
  }
  if (auto delta = c.find("delta"); delta != c.end() && delta->contains("content") &&
                                    (*delta)["content"].is_string() &&
                                    !(*delta)["content"].get_ref<const std::string&>().empty()) {
    return 1;
  }
  return 0;
}

// What one stream's events say: tokens with their arrival times, usage, [DONE], errors.
struct StreamTally {
  RequestResult& r;
  Clock::time_point t0;
  bool done = false;
  std::string error;
  double last_arrival_s = 0;

  void on_event(std::string_view data) {
    const double now_s = seconds_since(t0);
    if (data == "[DONE]") {
      done = true;
      return;
    }
    json event = json::parse(data, nullptr, /*allow_exceptions=*/false);
    if (event.is_discarded()) {
      error = "malformed SSE event";
      return;
    }
    if (event.contains("error")) {
      error = "stream error";
      return;
    }
    if (auto u = event.find("usage"); u != event.end() && u->is_object()) {
      if (u->contains("prompt_tokens")) r.usage_prompt_tokens = (*u)["prompt_tokens"].get<int32_t>();
      if (u->contains("completion_tokens")) r.usage_completion_tokens = (*u)["completion_tokens"].get<int32_t>();
    }
    auto choices = event.find("choices");
    if (choices == event.end() || !choices->is_array() || choices->empty()) return;
    const int32_t k = tokens_in_choice((*choices)[0]);
    if (k == 0) return;
    if (r.output_tokens == 0) {
      r.ttft_s = now_s;
      for (int32_t i = 1; i < k; ++i) r.itl_s.push_back(0.0);
    } else {
      const double gap = (now_s - last_arrival_s) / k;
      for (int32_t i = 0; i < k; ++i) r.itl_s.push_back(gap);
    }
    last_arrival_s = now_s;
    r.output_tokens += k;
  }

  // The request's verdict once the response has ended with HTTP 200.
  void finish() {
    if (!error.empty()) {
      r.failure = error;
    } else if (!done) {
      r.failure = "stream ended without [DONE]";
    } else if (r.output_tokens == 0) {
      r.failure = "no tokens";
    } else {
      r.ok = true;
    }
  }
};

// The server closed the connection before answering: nothing of the response was read and
// the read ended before the timeout could have (see the retry contract in the header).
bool closed_unanswered(const httplib::Result& result, int status, double elapsed_s, double timeout_s) {
  const bool io = result.error() == httplib::Error::Read || result.error() == httplib::Error::Write;
  return !result && io && status == 0 && elapsed_s < timeout_s;
}

}  // namespace

RequestResult StreamClient::run(const RequestSpec& spec) {
  constexpr int kMaxRetries = 2;
  for (int retries = 0;; ++retries) {
    bool retry = false;
    RequestResult r = send_once(spec, retry);
    r.retries = retries;
    if (!retry || retries == kMaxRetries) return r;
    // httplib has closed the failed socket: the next send connects afresh.
  }
}

RequestResult StreamClient::send_once(const RequestSpec& spec, bool& retry) {
  RequestResult r;
  r.input_tokens = static_cast<int32_t>(spec.prompt_ids.size());
  SseParser parser;
  StreamTally tally{.r = r, .t0 = Clock::now()};
  int status = 0;
  std::string error_body;

  httplib::Request req;
  req.method = "POST";
  req.path = impl_->endpoint.prefix + "/v1/completions";
  req.body = request_body(spec, impl_->options).dump();
  req.set_header("Content-Type", "application/json");
  req.set_header("Accept", "text/event-stream");
  req.response_handler = [&](const httplib::Response& res) {
    status = res.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t size, uint64_t, uint64_t) {
    if (status != 200) {
      error_body.append(data, std::min<size_t>(size, 512));
      return true;
    }
    parser.feed(data, size, [&](std::string_view event) { tally.on_event(event); });
    return true;
  };
  auto result = impl_->client->send(req);
  r.e2e_s = seconds_since(tally.t0);
  if (!result) {
    r.failure = "connection: " + httplib::to_string(result.error());
    retry = closed_unanswered(result, status, r.e2e_s, impl_->options.timeout_s);
  } else if (status != 200) {
    r.failure = "http " + std::to_string(status);
  } else {
    tally.finish();
  }
  return r;
}

StatusOr<std::string> fetch_first_model(const Endpoint& endpoint) {
  auto client = make_client(endpoint, 30);
  auto res = client->Get(endpoint.prefix + "/v1/models");
  if (!res) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("GET http://{}:{}{}/v1/models failed: {}; is the server up?", endpoint.host,
                              endpoint.port, endpoint.prefix, httplib::to_string(res.error())));
  }
  json j = json::parse(res->body, nullptr, false);
  if (res->status != 200 || j.is_discarded() || !j.contains("data") || !j["data"].is_array() ||
      j["data"].empty() || !j["data"][0].contains("id")) {
    return invalid_argument("GET /v1/models answered {} without a model id; pass --model", res->status);
  }
  return j["data"][0]["id"].get<std::string>();
}

StatusOr<std::vector<int32_t>> tokenize_remote(const Endpoint& endpoint, const std::string& text) {
  auto client = make_client(endpoint, 120);
  json body = {{"prompt", text}, {"add_special_tokens", false}};
  auto res = client->Post(endpoint.prefix + "/tokenize", body.dump(), "application/json");
  if (!res) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("POST /tokenize failed: {}", httplib::to_string(res.error())));
  }
  json j = json::parse(res->body, nullptr, false);
  if (res->status != 200 || j.is_discarded() || !j.contains("tokens")) {
    return invalid_argument("POST /tokenize answered {}: {}; use --prompt-source random with servers "
                            "that lack /tokenize",
                            res->status, res->body.substr(0, 200));
  }
  return j["tokens"].get<std::vector<int32_t>>();
}

}  // namespace strata::bench
