#include "common/listen_address.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

namespace strata {
namespace {

// errno of binding a fresh socket to `ai` (0 when it binds).
int bind_errno(const addrinfo& ai) {
  const int fd = ::socket(ai.ai_family, ai.ai_socktype | SOCK_CLOEXEC, ai.ai_protocol);
  if (fd < 0) return errno;
  // As a server sets it: a port whose old connections linger in TIME_WAIT is free.
  const int yes = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  const int err = ::bind(fd, ai.ai_addr, ai.ai_addrlen) == 0 ? 0 : errno;
  ::close(fd);
  return err;
}

// Whether a server accepts connections at the address `ai` binds (the wildcard address is
// reached through loopback). Linux refuses a bind with SO_REUSEADDR alone while connections
// of an earlier SO_REUSEPORT server (cpp-httplib's) linger in TIME_WAIT, though the next
// such server binds fine; a port is busy only if something still listens on it.
bool someone_listens(const addrinfo& ai) {
  sockaddr_storage addr{};
  std::memcpy(&addr, ai.ai_addr, ai.ai_addrlen);
  if (addr.ss_family == AF_INET) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
    if (v4->sin_addr.s_addr == htonl(INADDR_ANY)) v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  } else if (addr.ss_family == AF_INET6) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
    if (IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr)) v6->sin6_addr = in6addr_loopback;
  }
  const int fd = ::socket(ai.ai_family, ai.ai_socktype | SOCK_CLOEXEC, ai.ai_protocol);
  if (fd < 0) return false;
  const timeval timeout{.tv_sec = 1, .tv_usec = 0};  // bounds connect() too
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  const bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), ai.ai_addrlen) == 0;
  ::close(fd);
  return connected;
}

constexpr const char* kHostAdvice =
    "use --host 0.0.0.0 to listen on all interfaces or --host 127.0.0.1 for this machine only";

}  // namespace

Status check_listen_address(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    return invalid_argument("--host `{}` is neither an address nor a name that resolves ({}); {}",
                            host, ::gai_strerror(rc), kHostAdvice);
  }
  int err = EADDRNOTAVAIL;
  for (const addrinfo* ai = found; ai != nullptr && err != 0; ai = ai->ai_next) {
    err = bind_errno(*ai);
    if (err == EADDRINUSE && !someone_listens(*ai)) err = 0;
  }
  ::freeaddrinfo(found);
  switch (err) {
    case 0:
      return ok_status();
    case EADDRNOTAVAIL:
      return invalid_argument("--host {} is not an address of this machine; {}", host, kHostAdvice);
    case EADDRINUSE:
      return Status(StatusCode::kUnavailable,
                    fmt::format("port {} on {} is in use; is another server using the port? Stop it "
                                "or pick another --port",
                                port, host));
    case EACCES:
      return Status(StatusCode::kUnavailable,
                    fmt::format("port {} needs privileges this process lacks (ports below 1024 do); "
                                "pick --port 1024 or above",
                                port));
    default:
      return Status(StatusCode::kUnavailable,
                    fmt::format("cannot listen on {}:{}: {}", host, port, std::strerror(err)));
  }
}

bool is_loopback_host(std::string_view host) {
  std::string h(host);
  std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return std::tolower(c); });
  return h == "localhost" || h == "::1" || h.rfind("127.", 0) == 0;
}

}  // namespace strata
