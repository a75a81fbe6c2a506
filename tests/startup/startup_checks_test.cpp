// What strata checks before it starts anything: the address to listen on. Each wrong input
// gets a message naming it and saying what to do instead.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "common/listen_address.h"

namespace strata {
namespace {

bool has(const Status& st, const std::string& text) { return st.message().find(text) != std::string::npos; }

// A listening socket on 127.0.0.1, to make a port busy.
struct Listener {
  Listener() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd, 4), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
  }
  ~Listener() { ::close(fd); }
  int fd = -1;
  int port = 0;
};

TEST(ListenAddress, AddressNotOnThisMachineIsNotCalledABusyPort) {
  // 203.0.113.0/24 is TEST-NET-3: documentation only, never a local address.
  const Status st = check_listen_address("203.0.113.5", 8000);
  EXPECT_TRUE(has(st, "203.0.113.5 is not an address of this machine")) << st.message();
  EXPECT_TRUE(has(st, "0.0.0.0")) << st.message();
  EXPECT_TRUE(has(st, "127.0.0.1")) << st.message();
  EXPECT_FALSE(has(st, "port")) << st.message();
}

TEST(ListenAddress, UnresolvableHostSaysWhatToUse) {
  const Status st = check_listen_address("no-such-host.invalid", 8000);
  EXPECT_TRUE(has(st, "no-such-host.invalid")) << st.message();
  EXPECT_TRUE(has(st, "0.0.0.0")) << st.message();
}

TEST(ListenAddress, BusyPortIsReportedAsInUse) {
  Listener busy;
  const Status st = check_listen_address("127.0.0.1", busy.port);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(has(st, "port " + std::to_string(busy.port) + " on 127.0.0.1 is in use")) << st.message();
  EXPECT_TRUE(has(st, "--port")) << st.message();
  EXPECT_FALSE(check_listen_address("0.0.0.0", busy.port).ok());
}

TEST(ListenAddress, FreePortAndLocalAddressesPass) {
  int port = 0;
  {
    Listener was_busy;
    port = was_busy.port;
  }
  EXPECT_TRUE(check_listen_address("127.0.0.1", port).ok());
  EXPECT_TRUE(check_listen_address("0.0.0.0", port).ok());
  EXPECT_TRUE(check_listen_address("localhost", 0).ok());
}

}  // namespace
}  // namespace strata
