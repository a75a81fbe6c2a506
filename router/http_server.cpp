#include "router/http_server.h"

#include <sys/resource.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <thread>

#include "common/listen_address.h"
#include "router/http_connection.h"

namespace strata::router {
namespace {

using namespace std::chrono_literals;

// Every connection is a file descriptor: the soft limit (often 1,024) is raised to the hard
// one, so --max-connections is the limit a client meets, not EMFILE.
void raise_open_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
}

}  // namespace

class HttpServer::Impl {
 public:
  Impl(HttpServerSettings settings, HttpServerHooks hooks)
      : context_(std::make_shared<HttpServerContext>(std::move(settings), std::move(hooks))) {}

  StatusOr<int> bind() {
    const HttpServerSettings& s = context_->settings;
    // Asio's error would say only "address in use"; the probe says why (listen_address.h).
    STRATA_RETURN_IF_ERROR(check_listen_address(s.host, s.port));
    raise_open_file_limit();
    beast::error_code ec;
    tcp::resolver resolver(ioc_);
    const auto endpoints = resolver.resolve(s.host, std::to_string(s.port), tcp::resolver::passive, ec);
    if (ec || endpoints.empty()) return unavailable(fmt::format("cannot resolve {}: {}", s.host, ec.message()));
    const tcp::endpoint endpoint = endpoints.begin()->endpoint();
    acceptor_.open(endpoint.protocol(), ec);
    // SO_REUSEADDR lets a restart bind past TIME_WAIT; no SO_REUSEPORT, which would let a
    // second server bind the busy port and share its traffic.
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return unavailable(fmt::format("cannot listen on {}:{} ({}; taken since it was checked?); pick another {}",
                                     s.host, s.port, ec.message(), s.port_flag));
    }
    return static_cast<int>(acceptor_.local_endpoint().port());
  }

  void run() {
    accept();
    std::vector<std::thread> threads;
    for (int i = 1; i < context_->settings.io_threads; ++i) threads.emplace_back([this] { ioc_.run(); });
    ioc_.run();
    for (std::thread& t : threads) t.join();
  }

  void stop() {
    context_->stopping.store(true);
    ioc_.stop();
    // Handlers still running finish; what they post back is dropped with the io_context.
    context_->handler_pool.join();
  }

 private:
  static Status unavailable(std::string message) { return Status(StatusCode::kUnavailable, std::move(message)); }

  void accept() {
    acceptor_.async_accept(net::make_strand(ioc_), [self = this](beast::error_code ec, tcp::socket socket) {
      if (self->context_->stopping.load()) return;
      if (ec) return self->retry_accept(ec);
      self->admit(std::move(socket));
      self->accept();
    });
  }

  // Out of file descriptors (or another accept error): wait a moment instead of spinning.
  void retry_accept(const beast::error_code& ec) {
    spdlog::warn("router: accepting a connection on port {} failed: {}", context_->settings.port, ec.message());
    retry_timer_.expires_after(50ms);
    retry_timer_.async_wait([this](beast::error_code) {
      if (!context_->stopping.load()) accept();
    });
  }

  // The caps: 503 past --max-connections, 429 past --max-connections-per-client.
  void admit(tcp::socket socket) {
    beast::error_code ec;
    socket.set_option(tcp::no_delay(true), ec);  // no Nagle stall behind the client's delayed ACK
    const tcp::endpoint peer = socket.remote_endpoint(ec);
    if (ec) return;
    std::string address = peer.address().to_string();
    const HttpServerSettings& s = context_->settings;
    int refuse_status = 0;
    std::string why;
    {
      std::lock_guard lock(context_->mu);
      int& mine = context_->open_per_client[address];
      if (context_->open >= s.max_connections) {
        refuse_status = 503;
        why = fmt::format("the server holds as many connections as it takes ({}, --max-connections); retry shortly",
                          s.max_connections);
      } else if (mine >= s.max_connections_per_client) {
        refuse_status = 429;
        why = fmt::format("this client holds as many connections as one client may ({}, "
                          "--max-connections-per-client); reuse or close some",
                          s.max_connections_per_client);
      } else {
        ++context_->open;
        ++mine;
      }
      if (mine == 0) context_->open_per_client.erase(address);
    }
    auto connection = std::make_shared<HttpConnection>(std::move(socket), context_, std::move(address));
    if (refuse_status != 0) return connection->refuse(refuse_status, std::move(why));
    connection->start(true);
  }

  std::shared_ptr<HttpServerContext> context_;
  net::io_context ioc_;
  tcp::acceptor acceptor_{ioc_};
  net::steady_timer retry_timer_{ioc_};
};

HttpServer::HttpServer(HttpServerSettings settings, HttpServerHooks hooks)
    : impl_(std::make_unique<Impl>(std::move(settings), std::move(hooks))) {}

HttpServer::~HttpServer() { stop(); }

StatusOr<int> HttpServer::bind() { return impl_->bind(); }
void HttpServer::run() { impl_->run(); }
void HttpServer::stop() { impl_->stop(); }

}  // namespace strata::router
