#include "router/http_listener.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

#include "common/listen_address.h"

namespace strata::router {
namespace {

// Requests one keep-alive connection may carry: in effect no cap (the idle timeout ends it).
constexpr size_t kKeepAliveMaxRequests = 1'000'000'000;

// Debian's cpp-httplib is a compiled library built with a listen backlog of 5, so a burst of
// a few hundred clients would be refused at connect. Linux lets a second listen() raise the
// backlog of a listening socket; the socket is found by its bound port.
void raise_listen_backlog(int port) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return;
  while (dirent* entry = readdir(dir)) {
    const int fd = std::atoi(entry->d_name);
    if (fd <= 2) continue;
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) continue;
    sockaddr_storage addr{};
    socklen_t addr_len = sizeof addr;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &addr_len) != 0) continue;
    const int bound = addr.ss_family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port)
                      : addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                                   : -1;
    if (bound == port) ::listen(fd, SOMAXCONN);
  }
  closedir(dir);
}

}  // namespace

std::unique_ptr<httplib::Server> make_http_server(const HttpListenerSettings& settings) {
  auto http = std::make_unique<httplib::Server>();
  const auto threads = static_cast<size_t>(settings.threads);
  http->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http->set_read_timeout(settings.read_timeout_s, 0);
  http->set_write_timeout(settings.read_timeout_s, 0);
  // An idle keep-alive connection (or one whose request timed out, which cpp-httplib answers
  // and keeps open) holds a thread; it gets no longer than a slow request would, and never
  // more than httplib's 5 s default.
  http->set_keep_alive_timeout(std::min<time_t>(settings.read_timeout_s, 5));
  // httplib closes a keep-alive connection after 5 requests by default; a client's connection
  // pool should end only by going idle.
  http->set_keep_alive_max_count(kKeepAliveMaxRequests);
  // Headers and body go out in separate writes: with Nagle on, the body waits for the
  // client's delayed ACK, 40 ms on every non-streamed response of a reused connection.
  // Linux gives accepted sockets the listening socket's TCP_NODELAY.
  http->set_tcp_nodelay(true);
  // httplib's default options add SO_REUSEPORT, which lets a second server bind a busy port
  // and share its traffic; SO_REUSEADDR alone only lets a restart bind past TIME_WAIT.
  http->set_socket_options([](socket_t sock) {
    const int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  http->set_payload_max_length(static_cast<size_t>(settings.max_body_bytes));
  return http;
}

StatusOr<int> bind_http_server(httplib::Server& server, const std::string& host, int port,
                               std::string_view flag) {
  // httplib says only that binding failed; the probe says why (see listen_address.h).
  STRATA_RETURN_IF_ERROR(check_listen_address(host, port));
  const int bound = port == 0 ? server.bind_to_any_port(host) : (server.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("cannot listen on {}:{} (taken since it was checked?); pick another {}", host, port,
                              flag));
  }
  raise_listen_backlog(bound);
  return bound;
}

}  // namespace strata::router
