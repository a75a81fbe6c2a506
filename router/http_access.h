// HttpAccess: what the front door checks on every request from its head alone (method, path,
// headers), before the body is read or anything is routed: header count, a single
// Content-Length, the Host (DNS-rebinding guard), the Origin (a web page's cross-site POST),
// the Content-Type of a body, and the API key. Plain logic on a RequestHead, so the HTTP
// library underneath is not part of it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/config_fields.h"
#include "common/status.h"
#include "router/api_types.h"

namespace strata::router {

struct AccessConfig {
  // Keys a client must send as `Authorization: Bearer <key>`; none = no authentication.
  // Also read from --api-key-file (one per line, # comments) and $STRATA_API_KEY (comma
  // separated), which keep them out of the process list.
  std::vector<std::string> api_keys;
  std::string api_key_file;
  bool protect_probes = false;   // /health and /ready need the key too
  bool protect_metrics = false;  // /metrics needs the key too
  // Host header names accepted (port ignored); "*" = any. Empty = loopback names when the
  // router listens on a loopback address, any otherwise.
  std::vector<std::string> allowed_hosts;
  // Origins (scheme://host[:port]) whose web pages may call the API, "*" = any; a page of
  // the server's own origin always may.
  std::vector<std::string> allowed_origins;
  int max_header_count = 100;

  template <typename V>
  void visit_fields(V& v) {
    v("api_key", api_keys, "API keys clients send as `Authorization: Bearer KEY` (comma separated; also $STRATA_API_KEY); none = open");
    v("api_key_file", api_key_file, "file of API keys, one per line (# comments)");
    v("protect_probes", protect_probes, "/health and /ready require the API key too");
    v("protect_metrics", protect_metrics, "/metrics requires the API key too");
    v("allowed_hosts", allowed_hosts, "Host header names accepted, * = any (default: loopback names when --host is loopback, else any)");
    v("allowed_origins", allowed_origins, "web origins (scheme://host:port) allowed to call the API cross-site, * = any");
    v("max_header_count", max_header_count, "most header fields one request may carry (431 beyond)", config::Range{8, 10000});
  }
};

// A request as far as it is known before its body: header names compare case-insensitively.
struct RequestHead {
  std::string method;
  std::string path;
  std::vector<std::pair<std::string, std::string>> headers;

  std::vector<std::string_view> values(std::string_view name) const;
  std::optional<std::string_view> value(std::string_view name) const;  // the first
};

class HttpAccess {
 public:
  // `listen_host` is the router's --host (it picks the default allowed hosts). Reads the key
  // file and $STRATA_API_KEY; fails naming the file or the field.
  static StatusOr<HttpAccess> create(AccessConfig config, std::string_view listen_host);

  // The error to answer with (its http_status set), or nothing when the request may go on.
  std::optional<ApiError> check(const RequestHead& head) const;
  // The CORS response headers for a request from an allowed cross-site `origin`.
  std::vector<std::pair<std::string, std::string>> cors_headers(const RequestHead& head) const;
  bool requires_key() const { return !keys_.empty(); }
  // A key that opens the probes when they are protected, else "" (for a launcher's poll).
  std::string probe_key() const { return config_.protect_probes && !keys_.empty() ? keys_.front() : ""; }

 private:
  std::optional<ApiError> check_host(const RequestHead& head) const;
  std::optional<ApiError> check_origin(const RequestHead& head) const;
  std::optional<ApiError> check_key(const RequestHead& head) const;
  bool origin_allowed(std::string_view origin, const RequestHead& head) const;
  bool path_is_public(std::string_view path) const;

  AccessConfig config_;
  std::vector<std::string> keys_;
  std::vector<std::string> hosts_;  // lower case; {"*"} = any
};

}  // namespace strata::router
