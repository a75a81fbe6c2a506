// HttpConnection's LaterResponse writing, closing, and what it reads of a request's head.
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "router/http_connection.h"

namespace strata::router {
namespace {

using namespace std::chrono_literals;
constexpr size_t kWatchChunk = 4 << 10;
// How long a closing connection keeps reading what the client still sends: closing with
// unread bytes would reset the connection before the client has read the answer.
constexpr auto kLinger = 1s;
constexpr auto kAfterExpiry = 5s;

std::string decode_percent(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  auto hex = [](char c) { return std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (std::tolower(c) - 'a' + 10); };
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '%' && i + 2 < path.size() && std::isxdigit(static_cast<unsigned char>(path[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(path[i + 2]))) {
      out.push_back(static_cast<char>(hex(path[i + 1]) * 16 + hex(path[i + 2])));
      i += 2;
    } else {
      out.push_back(path[i]);
    }
  }
  return out;
}

}  // namespace

void HttpConnection::start_later(HttpResponse res) {
  later_ = std::move(res.later);
  writing_ = false;
  later_keep_alive_ = keep_alive_ && !res.close;
  arm_later_timer(later_->deadline());
  std::function<void()> wake = [weak = weak_from_this()] {
    auto self = weak.lock();
    if (!self || self->wake_posted_.exchange(true)) return;
    net::post(self->stream_.get_executor(), [self] {
      self->wake_posted_.store(false);
      self->pump();
    });
  };
  if (!later_->streamed()) return later_->start(std::move(wake));
  if (context_->hooks.on_answer) context_->hooks.on_answer(head_, res.status);
  auto head = std::make_shared<http::response<http::empty_body>>(static_cast<http::status>(res.status), 11);
  set_response_fields(*head, res);
  head->chunked(true);
  head->keep_alive(later_keep_alive_);
  auto serializer = std::make_shared<http::response_serializer<http::empty_body>>(*head);
  writing_ = true;
  stream_.expires_after(std::chrono::seconds(context_->settings.write_timeout_s));
  http::async_write_header(stream_, *serializer,
                           [self = shared_from_this(), head, serializer](beast::error_code ec, size_t) {
                             self->writing_ = false;
                             if (ec) return self->shut();
                             self->pump();
                           });
  watch_for_disconnect();
  later_->start(std::move(wake));
}

// The timer holds the connection while the answer is awaited (a whole one has nothing else
// in flight) and is cancelled when the exchange ends. Past the deadline the work is stopped,
// and the connection waits on for the stopped work's end.
void HttpConnection::arm_later_timer(std::chrono::steady_clock::time_point at) {
  timer_.expires_at(at);
  timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || !self->later_) return;
    self->later_->expire();
    self->arm_later_timer(std::chrono::steady_clock::now() + kAfterExpiry);
  });
}

void HttpConnection::pump() {
  if (closed_ || writing_ || !later_) return;
  HttpResponse piece;
  const bool last = later_->produce(piece);
  if (!later_->streamed()) {
    if (!last) return;
    timer_.cancel();
    for (const auto& header : cors_.headers) piece.headers.push_back(header);
    piece.close = piece.close || !later_keep_alive_;
    if (context_->hooks.on_answer) context_->hooks.on_answer(head_, piece.status);
    return write_whole(std::move(piece), std::exchange(later_, nullptr));
  }
  if (piece.body.empty() && !last) return;
  write_chunk(std::move(piece.body), last);
}

void HttpConnection::write_chunk(std::string data, bool last) {
  writing_ = true;
  auto buffer = std::make_shared<std::string>(std::move(data));
  stream_.expires_after(std::chrono::seconds(context_->settings.write_timeout_s));
  auto after = [self = shared_from_this(), buffer, last](beast::error_code ec, size_t) {
    self->writing_ = false;
    if (ec) return self->shut();
    if (!last) return self->pump();
    self->stream_.expires_after(std::chrono::seconds(self->context_->settings.write_timeout_s));
    net::async_write(self->stream_, http::make_chunk_last(), [self](beast::error_code ec2, size_t) {
      self->end_later(!ec2);
      self->timer_.cancel();
      if (ec2 || !self->later_keep_alive_ || self->context_->stopping.load()) return self->shut();
      self->resume_after_stream();
    });
  };
  if (buffer->empty()) return after({}, 0);
  net::async_write(stream_, http::make_chunk(net::buffer(*buffer)), std::move(after));
}

// While a stream is written nothing else reads the socket: this read notices a client that
// goes away (its work is then stopped), and keeps what a pipelining client sends next.
void HttpConnection::watch_for_disconnect() {
  if (closed_ || !later_ || buffer_.size() >= context_->settings.max_header_bytes) return;
  watching_ = true;
  stream_.socket().async_read_some(buffer_.prepare(kWatchChunk), [self = shared_from_this()](beast::error_code ec,
                                                                                              size_t n) {
    self->watching_ = false;
    if (!ec) self->buffer_.commit(n);
    if (self->resume_when_watch_ends_) {
      self->resume_when_watch_ends_ = false;
      return self->wait_for_request();
    }
    if (self->closed_) return;
    if (ec) return self->shut();  // the client went away mid-stream
    self->watch_for_disconnect();
  });
}

void HttpConnection::resume_after_stream() {
  if (!watching_) return wait_for_request();
  // The watch's read must end before the next request is read.
  resume_when_watch_ends_ = true;
  beast::error_code ignored;
  stream_.socket().cancel(ignored);
}

void HttpConnection::end_later(bool completed) {
  if (auto later = std::exchange(later_, nullptr)) later->end(completed);
}

void HttpConnection::shut() {
  if (closed_) return;
  closed_ = true;
  end_later(false);
  timer_.cancel();
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream_.expires_after(kLinger);
  discard_until_closed();
}

void HttpConnection::discard_until_closed() {
  stream_.async_read_some(net::buffer(discard_), [self = shared_from_this()](beast::error_code ec, size_t) {
    if (!ec) return self->discard_until_closed();
    beast::error_code ignored;
    self->stream_.socket().close(ignored);
  });
}

const HttpRoute* HttpConnection::find_route(const RequestHead& head) const {
  for (const HttpRoute& route : context_->hooks.routes) {
    if (route.method != head.method) continue;
    if (route.path == "*" || route.path == head.path) return &route;
    if (route.path.back() == '/' && head.path.size() > route.path.size() && head.path.rfind(route.path, 0) == 0) {
      return &route;
    }
  }
  return nullptr;
}

RequestHead HttpConnection::head_of(const Parser::value_type& message) const {
  RequestHead head;
  head.method = std::string(message.method_string());
  const std::string_view target(message.target().data(), message.target().size());
  head.path = decode_percent(target.substr(0, target.find('?')));
  for (const auto& field : message) {
    head.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  return head;
}

}  // namespace strata::router
