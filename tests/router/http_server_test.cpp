// HttpServer on a real socket, driven by a raw-socket client: pipelining, LaterResponses woken
// from other threads (streamed and whole), a client that goes away mid-stream, the caps, and
// stop() with connections open. The e2e tests drive it inside strata-router.
#include "router/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace strata::router {
namespace {

using namespace std::chrono_literals;

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval timeout{.tv_sec = 10, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  return fd;
}

void send_all(int fd, const std::string& data) {
  ASSERT_EQ(::send(fd, data.data(), data.size(), MSG_NOSIGNAL), static_cast<ssize_t>(data.size()));
}

// Reads until `done(received)` or the connection ends.
std::string read_until(int fd, const std::function<bool(const std::string&)>& done) {
  std::string got;
  char buf[4096];
  while (!done(got)) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

// A LaterResponse fed by the test: push() from any thread, finish() ends it.
class FedResponse : public LaterResponse {
 public:
  explicit FedResponse(bool streamed) : streamed_(streamed) {}
  bool streamed() const override { return streamed_; }
  void start(std::function<void()> wake) override {
    std::lock_guard lock(mu_);
    wake_ = std::move(wake);
    wake_();
  }
  bool produce(HttpResponse& res) override {
    std::lock_guard lock(mu_);
    if (!streamed_ && !finished_) return false;
    res.body += std::exchange(pending_, "");
    return finished_;
  }
  Clock::time_point deadline() const override { return Clock::now() + 1h; }
  void expire() override {}
  void end(bool completed) override {
    std::lock_guard lock(mu_);
    ended_ = true;
    completed_ = completed;
    ended_cv_.notify_all();
  }

  void push(const std::string& data, bool finish) {
    std::function<void()> wake;
    {
      std::lock_guard lock(mu_);
      pending_ += data;
      finished_ = finish;
      wake = wake_;
    }
    if (wake) wake();
  }
  bool wait_ended(bool& completed) {
    std::unique_lock lock(mu_);
    const bool ended = ended_cv_.wait_for(lock, 10s, [&] { return ended_; });
    completed = completed_;
    return ended;
  }

 private:
  const bool streamed_;
  std::mutex mu_;
  std::condition_variable ended_cv_;
  std::function<void()> wake_;
  std::string pending_;
  bool finished_ = false, ended_ = false, completed_ = false;
};

class HttpServerTest : public ::testing::Test {
 protected:
  void start(HttpServerSettings settings = {}) {
    HttpServerHooks hooks;
    hooks.routes = {
        {.method = "GET", .path = "/inline", .handler = [](HttpRequest&) { return HttpResponse{.body = "inline"}; }},
        {.method = "POST", .path = "/echo", .blocking = true,
         .handler = [](HttpRequest& r) { return HttpResponse{.body = "echo:" + r.body}; }},
        {.method = "GET", .path = "/later", .handler = [this](HttpRequest& r) {
           auto later = std::make_shared<FedResponse>(r.head.value("X-Stream").has_value());
           {
             std::lock_guard lock(mu_);
             latest_ = later;
           }
           latest_cv_.notify_all();
           return HttpResponse{.later = later};
         }},
    };
    hooks.error_response = [](const RequestHead&, int status, std::string_view why) {
      return HttpResponse{.status = status, .body = std::string(why)};
    };
    settings.port_flag = "--port";
    server_ = std::make_unique<HttpServer>(settings, std::move(hooks));
    auto port = server_->bind();
    ASSERT_TRUE(port.ok()) << port.status().message();
    port_ = *port;
    thread_ = std::thread([this] { server_->run(); });
  }
  void TearDown() override {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
  }
  std::shared_ptr<FedResponse> wait_latest() {
    std::unique_lock lock(mu_);
    latest_cv_.wait_for(lock, 10s, [&] { return latest_ != nullptr; });
    return std::exchange(latest_, nullptr);
  }

  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable latest_cv_;
  std::shared_ptr<FedResponse> latest_;
};

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  start();
  const int fd = connect_to(port_);
  send_all(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none"
               "GET /inline HTTP/1.1\r\nHost: x\r\n\r\n"
               "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo");
  const std::string got = read_until(fd, [](const std::string& s) { return s.find("echo:two") != std::string::npos; });
  ::close(fd);
  const size_t one = got.find("echo:one"), inline_at = got.find("inline"), two = got.find("echo:two");
  ASSERT_NE(two, std::string::npos) << got;
  EXPECT_LT(one, inline_at);
  EXPECT_LT(inline_at, two);
}

TEST_F(HttpServerTest, StreamedLaterResponseIsWrittenAsItIsWokenFromAnotherThread) {
  start();
  const int fd = connect_to(port_);
  send_all(fd, "GET /later HTTP/1.1\r\nHost: x\r\nX-Stream: 1\r\n\r\n");
  auto later = wait_latest();
  ASSERT_NE(later, nullptr);
  std::thread producer([later] {
    for (int i = 0; i < 50; ++i) later->push("data: " + std::to_string(i) + "\n\n", false);
    later->push("data: [DONE]\n\n", true);
  });
  const std::string got = read_until(fd, [](const std::string& s) { return s.ends_with("0\r\n\r\n"); });
  producer.join();
  EXPECT_NE(got.find("Transfer-Encoding: chunked"), std::string::npos) << got;
  EXPECT_EQ(count(got, "data: "), 51u);
  EXPECT_LT(got.find("data: 49"), got.find("data: [DONE]"));
  bool completed = false;
  ASSERT_TRUE(later->wait_ended(completed));
  EXPECT_TRUE(completed);
  // The connection is kept for the next request.
  send_all(fd, "GET /inline HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(read_until(fd, [](const std::string& s) { return s.find("inline") != std::string::npos; }).find("inline"),
            std::string::npos);
  ::close(fd);
}

TEST_F(HttpServerTest, WholeLaterResponseIsSentOnceFinished) {
  start();
  const int fd = connect_to(port_);
  send_all(fd, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n");
  auto later = wait_latest();
  ASSERT_NE(later, nullptr);
  later->push("part one, ", false);
  std::this_thread::sleep_for(50ms);
  later->push("part two", true);
  const std::string got = read_until(fd, [](const std::string& s) { return s.find("part two") != std::string::npos; });
  ::close(fd);
  EXPECT_NE(got.find("Content-Length: 18"), std::string::npos) << got;
  EXPECT_NE(got.find("part one, part two"), std::string::npos) << got;
}

TEST_F(HttpServerTest, AClientThatGoesAwayMidStreamEndsItsResponse) {
  start();
  const int fd = connect_to(port_);
  send_all(fd, "GET /later HTTP/1.1\r\nHost: x\r\nX-Stream: 1\r\n\r\n");
  auto later = wait_latest();
  ASSERT_NE(later, nullptr);
  later->push("data: 1\n\n", false);
  ::close(fd);
  bool completed = true;
  ASSERT_TRUE(later->wait_ended(completed));
  EXPECT_FALSE(completed);
  later->push("data: 2\n\n", false);  // a wake after the end is harmless
}

TEST_F(HttpServerTest, ConnectionsPastThePerClientCapGet429) {
  start({.max_connections_per_client = 2});
  const int a = connect_to(port_), b = connect_to(port_);
  send_all(a, "GET /inline HTTP/1.1\r\nHost: x\r\n\r\n");
  read_until(a, [](const std::string& s) { return s.find("inline") != std::string::npos; });
  const int c = connect_to(port_);
  const std::string got = read_until(c, [](const std::string&) { return false; });  // until closed
  EXPECT_EQ(got.rfind("HTTP/1.1 429", 0), 0u) << got;
  ::close(a);
  ::close(b);
  ::close(c);
}

TEST_F(HttpServerTest, AHeadOverTheDeadlineGets408) {
  start({.read_timeout_s = 1});
  const int fd = connect_to(port_);
  send_all(fd, "GET /inline HTTP/1.1\r\nHost: x\r\n");
  const auto started = std::chrono::steady_clock::now();
  std::string got;
  while (got.empty() && std::chrono::steady_clock::now() - started < 5s) {
    send_all(fd, "X-A: b\r\n");  // a header a while: a per-read timeout would never end it
    std::this_thread::sleep_for(200ms);
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) got.assign(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  EXPECT_EQ(got.rfind("HTTP/1.1 408", 0), 0u) << got;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
}

TEST_F(HttpServerTest, StopReturnsWithConnectionsOpenAndAStreamRunning) {
  start();
  std::vector<int> fds;
  for (int i = 0; i < 20; ++i) fds.push_back(connect_to(port_));
  send_all(fds[0], "GET /later HTTP/1.1\r\nHost: x\r\nX-Stream: 1\r\n\r\n");
  auto later = wait_latest();
  ASSERT_NE(later, nullptr);
  server_->stop();
  thread_.join();
  bool completed = true;
  server_.reset();  // the connections go with the server
  ASSERT_TRUE(later->wait_ended(completed));
  EXPECT_FALSE(completed);
  for (int fd : fds) ::close(fd);
}

TEST_F(HttpServerTest, ABusyPortIsAnErrorNamingTheFlag) {
  start();
  HttpServer second({.port = port_, .port_flag = "--port"}, {});
  auto bound = second.bind();
  ASSERT_FALSE(bound.ok());
  EXPECT_NE(bound.status().message().find("in use"), std::string::npos) << bound.status().message();
}

}  // namespace
}  // namespace strata::router
