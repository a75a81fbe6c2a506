// The router's HTTP listeners: an httplib::Server with strata's connection settings, bound
// with errors that say why. The main listener and the probe listener (--probe-port) are
// both made here.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace strata::router {

struct HttpListenerSettings {
  int threads = 64;         // connections served at once (a thread each)
  int read_timeout_s = 10;  // per read and per write
  int64_t max_body_bytes = 4 << 20;
};

std::unique_ptr<httplib::Server> make_http_server(const HttpListenerSettings& settings);
// Binds `server` to host:port (port 0: a free one) and returns the port; `flag` names the
// option to change when the port is taken.
StatusOr<int> bind_http_server(httplib::Server& server, const std::string& host, int port,
                               std::string_view flag);

}  // namespace strata::router
