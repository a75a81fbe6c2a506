#include "router/http_access.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>

#include "common/listen_address.h"

namespace strata::router {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// "example.com:8000" → "example.com"; "[::1]:8000" → "::1".
std::string host_name(std::string_view authority) {
  if (!authority.empty() && authority.front() == '[') {
    const size_t end = authority.find(']');
    return lower(authority.substr(1, end == std::string_view::npos ? authority.npos : end - 1));
  }
  return lower(authority.substr(0, authority.rfind(':')));
}

ApiError forbidden(std::string message, std::string code) {
  return ApiError{.http_status = 403, .message = std::move(message), .param = "", .code = std::move(code)};
}

// Keys compare in constant time, so the time to refuse says nothing of how close a guess was.
bool key_matches(std::string_view given, const std::string& key) {
  if (given.size() != key.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < key.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ key[i]);
  return diff == 0;
}

Status add_keys_from_file(const std::string& path, std::vector<std::string>& keys) {
  std::ifstream in(path);
  if (!in) return invalid_argument("--api-key-file {}: cannot be read; give a file of API keys, one per line", path);
  std::string line;
  while (std::getline(in, line)) {
    const std::string_view key = trim(line);
    if (!key.empty() && key.front() != '#') keys.emplace_back(key);
  }
  if (keys.empty()) return invalid_argument("--api-key-file {}: holds no key (one per line, # starts a comment)", path);
  return ok_status();
}

void add_keys_from_list(std::string_view list, std::vector<std::string>& keys) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view key = trim(list.substr(0, comma));
    if (!key.empty()) keys.emplace_back(key);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
  }
}

}  // namespace

std::vector<std::string_view> RequestHead::values(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) out.push_back(value);
  }
  return out;
}

std::optional<std::string_view> RequestHead::value(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) return std::string_view(value);
  }
  return std::nullopt;
}

StatusOr<HttpAccess> HttpAccess::create(AccessConfig config, std::string_view listen_host) {
  HttpAccess access;
  for (const std::string& key : config.api_keys) add_keys_from_list(key, access.keys_);
  if (!config.api_key_file.empty()) STRATA_RETURN_IF_ERROR(add_keys_from_file(config.api_key_file, access.keys_));
  if (const char* env = std::getenv("STRATA_API_KEY")) add_keys_from_list(env, access.keys_);
  for (const std::string& host : config.allowed_hosts) access.hosts_.push_back(lower(trim(host)));
  if (access.hosts_.empty()) {
    access.hosts_ = is_loopback_host(listen_host) || listen_host.empty()
                        ? std::vector<std::string>{"localhost", "127.0.0.1", "::1"}
                        : std::vector<std::string>{"*"};
  }
  access.config_ = std::move(config);
  return access;
}

std::optional<ApiError> HttpAccess::check(const RequestHead& head) const {
  if (head.headers.size() > static_cast<size_t>(config_.max_header_count)) {
    return ApiError{.http_status = 431,
                    .message = fmt::format("the request has {} header fields; at most {} are accepted",
                                           head.headers.size(), config_.max_header_count)};
  }
  const auto lengths = head.values("Content-Length");
  if (lengths.size() > 1) {
    // Two lengths let a proxy and this server disagree on where the request ends.
    return ApiError{.message = fmt::format("the request has {} Content-Length headers; send exactly one",
                                           lengths.size()),
                    .param = "", .code = ""};
  }
  if (auto error = check_host(head)) return error;
  if (auto error = check_origin(head)) return error;
  if (auto error = check_key(head)) return error;
  const auto type = head.value("Content-Type");
  if (head.method == "POST" && type) {
    // A browser posts text/plain and form bodies cross-site without asking first; JSON only.
    const std::string media = lower(trim(type->substr(0, type->find(';'))));
    if (media != "application/json") {
      return ApiError{.http_status = 415,
                      .message = fmt::format("the body must be JSON: send `Content-Type: application/json`. Given: `{}`", *type),
                      .param = "", .code = "unsupported_media_type"};
    }
  }
  return std::nullopt;
}

std::optional<ApiError> HttpAccess::check_host(const RequestHead& head) const {
  const auto host = head.value("Host");
  if (!host || hosts_.front() == "*") return std::nullopt;
  const std::string name = host_name(*host);
  if (std::find(hosts_.begin(), hosts_.end(), name) != hosts_.end()) return std::nullopt;
  // A page on attacker.example that re-points its DNS name at 127.0.0.1 still sends its
  // own name as Host.
  return forbidden(fmt::format("Host `{}` is not served here; this server answers to {} "
                               "(set --allowed-hosts to add names)",
                               *host, fmt::join(hosts_, ", ")),
                   "host_not_allowed");
}

bool HttpAccess::origin_allowed(std::string_view origin, const RequestHead& head) const {
  for (const std::string& allowed : config_.allowed_origins) {
    if (allowed == "*" || iequals(trim(allowed), origin)) return true;
  }
  // Same origin: the page was served by this very host and port.
  const size_t scheme_end = origin.find("://");
  const auto host = head.value("Host");
  return scheme_end != std::string_view::npos && host && iequals(origin.substr(scheme_end + 3), *host);
}

std::optional<ApiError> HttpAccess::check_origin(const RequestHead& head) const {
  const auto origin = head.value("Origin");
  if (!origin || origin_allowed(*origin, head)) return std::nullopt;
  return forbidden(fmt::format("requests from web pages of origin `{}` are not allowed "
                               "(set --allowed-origins to allow it)", *origin),
                   "origin_not_allowed");
}

bool HttpAccess::path_is_public(std::string_view path) const {
  if (path == "/health" || path == "/ready") return !config_.protect_probes;
  if (path == "/metrics") return !config_.protect_metrics;
  return false;
}

std::optional<ApiError> HttpAccess::check_key(const RequestHead& head) const {
  if (keys_.empty() || head.method == "OPTIONS" || path_is_public(head.path)) return std::nullopt;
  const auto auth = head.value("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (auth && auth->size() > kBearer.size() && iequals(auth->substr(0, kBearer.size()), kBearer)) {
    const std::string_view given = trim(auth->substr(kBearer.size()));
    if (std::any_of(keys_.begin(), keys_.end(), [&](const std::string& k) { return key_matches(given, k); })) {
      return std::nullopt;
    }
    return ApiError{.http_status = 401, .message = "Incorrect API key provided.", .param = "",
                    .code = "invalid_api_key"};
  }
  return ApiError{.http_status = 401,
                  .message = "You didn't provide an API key. Send it as `Authorization: Bearer KEY`.",
                  .param = "", .code = "invalid_api_key"};
}

std::vector<std::pair<std::string, std::string>> HttpAccess::cors_headers(const RequestHead& head) const {
  const auto origin = head.value("Origin");
  if (!origin || !origin_allowed(*origin, head)) return {};
  return {{"Access-Control-Allow-Origin", std::string(*origin)},
          {"Vary", "Origin"},
          {"Access-Control-Allow-Methods", "GET, POST, OPTIONS"},
          {"Access-Control-Allow-Headers", "Authorization, Content-Type"},
          {"Access-Control-Max-Age", "600"}};
}

}  // namespace strata::router
