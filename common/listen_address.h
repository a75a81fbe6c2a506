// Whether an HTTP server could listen on host:port, and if not, why — in words a user can
// act on. cpp-httplib's bind_to_port reports only failure, and it sets SO_REUSEPORT, so a
// port another server holds can even look free to it; this probe binds a plain socket
// without SO_REUSEPORT and reads errno: an address not on this machine (EADDRNOTAVAIL) or a
// host that does not resolve is not a busy port (EADDRINUSE, and something listening there).
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace strata {

// ok when a TCP socket can be bound to host:port now (port 0: any free port). Binds and
// closes; the caller binds again, so a port taken in between still fails there.
Status check_listen_address(const std::string& host, int port);

// "localhost", "::1" or 127.x.y.z, in any case: reachable from this machine only.
bool is_loopback_host(std::string_view host);

}  // namespace strata
