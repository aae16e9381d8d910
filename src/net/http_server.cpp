#include "net/http_server.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <memory>
#include <thread>

#include "net/upgrade.hpp"

namespace shepherd::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr std::size_t kMaxPath = 2048;  // longer: 414 (the router's patterns never need more)

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i] == '+' ? ' ' : s[i]);
    }
  }
  return out;
}

void split_target(std::string_view target, HttpRequest& r) {
  const auto q = target.find('?');
  r.target = std::string(target);
  r.path = percent_decode(target.substr(0, q));
  if (q == std::string_view::npos) return;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    const auto eq = pair.find('=');
    if (!pair.empty())
      r.query[percent_decode(pair.substr(0, eq))] =
          eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
}

}  // namespace

struct HttpServer::Impl {
  Impl(const Router& r, HttpServerOptions o, std::shared_ptr<asio::ssl::context> t)
      : router(r), options(o), tls(std::move(t)) {}

  const Router& router;
  HttpServerOptions options;
  std::shared_ptr<asio::ssl::context> tls;
  asio::io_context ioc;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::unique_ptr<asio::thread_pool> handlers;  // after ioc: destroyed before it
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;
  std::map<std::string, std::shared_ptr<UpgradeHandler>> upgrades;
  // Shared: an upgraded connection's slot may be dropped after the server's own members are gone.
  std::shared_ptr<std::atomic<std::size_t>> open = std::make_shared<std::atomic<std::size_t>>(0);
  std::atomic<bool> stopped{false};
  asio::steady_timer accept_pause{ioc};
  bool accept_failing = false;  // warned once per run of failures, not once per try
  bool refusing = false;        // the same for connections over max_connections

  void accept();
};

namespace {

template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(HttpServer::Impl& server, Stream stream, std::string remote)
      : server_(server),
        open_(server.open),
        stream_(std::move(stream)),
        remote_(std::move(remote)) {
    ++*open_;
  }
  // A session may be destroyed by the event loop's own teardown, after the server's members: its
  // own share of the count keeps that alive.
  ~Session() {
    if (!handed_over_) --*open_;
  }

  void start() {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      lowest().expires_after(server_.options.request_timeout);
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (!ec) self->wait_for_request();
                              });
    } else {
      wait_for_request();
    }
  }

 private:
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  // Idle until the first byte of the next request; from then on the whole request has
  // request_timeout to arrive.
  void wait_for_request() {
    if (buffer_.size() > 0) return read_request();  // a pipelined request is already here
    lowest().expires_after(server_.options.idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              if (ec) return;  // closed, or idle too long: the connection just ends
                              self->buffer_.commit(n);
                              self->read_request();
                            });
  }

  // The request's deadline is a timer of its own, not the stream's expiry (which closes the
  // socket): a client too slow is cancelled and still gets its 408.
  void read_request() {
    parser_.emplace();
    parser_->body_limit(server_.options.max_body_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(server_.options.max_header_bytes));
    timed_out_ = false;
    lowest().expires_after(server_.options.request_timeout + std::chrono::seconds(5));
    deadline_.expires_after(server_.options.request_timeout);
    deadline_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (ec) return;  // the request arrived first
      self->timed_out_ = true;
      beast::error_code ignored;
      self->lowest().socket().cancel(ignored);
    });
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       self->deadline_.cancel();
                       self->on_read(ec);
                     });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::ssl::error::stream_truncated)
      return close();
    if (timed_out_)
      return fail(408, "timeout", "",
                  "the request did not arrive within " +
                      std::to_string(server_.options.request_timeout.count()) + " ms");
    if (ec == http::error::body_limit)
      return fail(413, "body_too_large", "body",
                  "the request body is larger than " +
                      std::to_string(server_.options.max_body_bytes) + " bytes");
    if (ec == http::error::header_limit) {
      // No target read: the request line (its URI) is what is too long.
      if (parser_->get().target().empty())
        return fail(414, "uri_too_long", "path", "the request URI is too long");
      return fail(431, "headers_too_large", "headers", "the request headers are too large");
    }
    if (ec) {
      if (ec.category() == http::make_error_code(http::error::bad_target).category())
        return fail(400, "bad_request", "", "the request could not be read: " + ec.message());
      return;  // the connection broke
    }
    auto& req = parser_->get();
    if (req.target().size() > kMaxPath)
      return fail(414, "uri_too_long", "path", "the request URI is too long");
    if (beast::websocket::is_upgrade(req)) return upgrade();
    HttpRequest r;
    r.method = std::string(req.method_string());
    split_target(req.target(), r);
    for (const auto& field : req) {
      std::string name(field.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers[name] = std::string(field.value());
    }
    r.body = std::move(req.body());
    r.remote = remote_;
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    lowest().expires_never();  // the handler's time is not the client's
    asio::post(*server_.handlers, [self = this->shared_from_this(), r = std::move(r)]() mutable {
      HttpResponse answer;
      try {
        answer = self->server_.router.handle(std::move(r));
      } catch (const std::exception& e) {
        spdlog::error("{} {}: {}", r.method, r.path, e.what());
        answer = HttpResponse::error(500, "internal", "", "internal error");
      }
      asio::post(self->stream_.get_executor(),
                 [self, answer = std::move(answer)]() mutable { self->write(std::move(answer)); });
    });
  }

  void upgrade() {
    auto it = server_.upgrades.end();
    std::string path(parser_->get().target());
    path = path.substr(0, path.find('?'));
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      it = server_.upgrades.find(path);
      if (it != server_.upgrades.end()) {
        lowest().expires_never();
        handed_over_ = true;  // the slot counts the connection from now on
        net::ConnectionSlot slot(nullptr, [open = open_](void*) { --*open; });
        it->second->accept(std::move(stream_), parser_->release(), remote_, std::move(slot));
        return;
      }
    }
    fail(404, "not_found", "path", "no WebSocket at " + path + " (agents connect over TLS)");
  }

  void fail(int status, std::string_view code, const std::string& field,
            const std::string& message) {
    keep_alive_ = false;
    HttpResponse r = HttpResponse::error(status, code, field, message);
    write(std::move(r));
  }

  void write(HttpResponse answer) {
    response_ = {};
    response_.version(version_);
    response_.result(static_cast<unsigned>(answer.status));
    response_.set(http::field::content_type, answer.content_type);
    for (const auto& [k, v] : answer.headers) response_.set(k, v);
    response_.body() = std::move(answer.body);
    response_.keep_alive(keep_alive_);
    response_.prepare_payload();
    lowest().expires_after(server_.options.request_timeout);
    http::async_write(stream_, response_,
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                        if (ec) return;
                        if (!self->keep_alive_) return self->close();
                        self->wait_for_request();
                      });
  }

  void close() {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      lowest().expires_after(std::chrono::seconds(2));
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {});
    } else {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      lowest().expires_after(std::chrono::seconds(2));
      drain();
    }
  }

  // A lingering close: a client still sending a body we refused (413) would block in its
  // write and never read the answer if we closed at once (and a reset could discard it).
  // Read and drop what it sends, for a bounded time and size, until it closes.
  void drain() {
    if (drained_ > kMaxDrain) return;
    if (!scratch_) scratch_ = std::make_unique<char[]>(kScratch);
    stream_.async_read_some(asio::buffer(scratch_.get(), kScratch),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              if (ec) return;
                              self->drained_ += n;
                              self->drain();
                            });
  }

  HttpServer::Impl& server_;
  std::shared_ptr<std::atomic<std::size_t>> open_;
  Stream stream_;
  std::string remote_;
  beast::flat_buffer buffer_{16 << 10};
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  asio::steady_timer deadline_{stream_.get_executor()};
  bool timed_out_ = false;
  bool keep_alive_ = false;
  static constexpr std::size_t kMaxDrain = 64u << 20;
  static constexpr std::size_t kScratch = 16u << 10;
  std::unique_ptr<char[]> scratch_;  // only while draining
  std::size_t drained_ = 0;
  bool handed_over_ = false;
  unsigned version_ = 11;
};

}  // namespace

void HttpServer::Impl::accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (stopped) return;
    if (ec == asio::error::operation_aborted) return;  // the acceptor closed
    namespace errc = boost::system::errc;  // conditions: they match the system's error codes
    const bool out_of_resources = ec == errc::too_many_files_open ||
                                  ec == errc::too_many_files_open_in_system ||
                                  ec == errc::no_buffer_space || ec == errc::not_enough_memory;
    if (ec && !out_of_resources) {  // one connection's trouble (reset before accept): the next
      spdlog::debug("http: accept: {}", ec.message());
      return accept();
    }
    if (ec) {
      // Out of file descriptors (EMFILE, ENFILE) or memory: the pending connection stays in the
      // backlog, so trying again at once would spin a core. Pause, then try again.
      if (!accept_failing)
        spdlog::warn("http: cannot accept connections ({}), {} open; retrying every 100 ms",
                     ec.message(), open->load());
      accept_failing = true;
      accept_pause.expires_after(std::chrono::milliseconds(100));
      accept_pause.async_wait([this](beast::error_code waited) {
        if (!waited && !stopped) accept();
      });
      return;
    }
    if (accept_failing) spdlog::info("http: accepting connections again");
    accept_failing = false;
    {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);  // no Nagle wait on a kept-alive client
      const auto peer = socket.remote_endpoint(ignored);
      const std::string remote = ignored ? "" : peer.address().to_string();
      if (*open >= options.max_connections) {
        if (!refusing)  // once per run of refusals: a fleet reconnecting would flood the log
          spdlog::warn("http: refusing connections (from {} first): {} open, the limit is {}",
                       remote, open->load(), options.max_connections);
        refusing = true;
        socket.close(ignored);
      } else {
        refusing = false;
        if (tls)
          std::make_shared<Session<TlsStream>>(*this, TlsStream(std::move(socket), *tls), remote)
              ->start();
        else
          std::make_shared<Session<beast::tcp_stream>>(*this, beast::tcp_stream(std::move(socket)),
                                                       remote)
              ->start();
      }
    }
    accept();
  });
}

HttpServer::HttpServer(const Router& router, HttpServerOptions options,
                       std::shared_ptr<asio::ssl::context> tls)
    : impl_(std::make_unique<Impl>(router, options, std::move(tls))) {}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::on_upgrade(const std::string& path, std::shared_ptr<UpgradeHandler> handler) {
  impl_->upgrades[path] = std::move(handler);
}

int HttpServer::bind(const std::string& host, int port) {
  beast::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) throw std::runtime_error("cannot listen on '" + host + "': not an IP address");
  const tcp::endpoint at(address, static_cast<unsigned short>(port));
  auto& a = impl_->acceptor;
  a.open(at.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(at, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) + ": " +
                             ec.message() + " (in use? try another port)");
  return a.local_endpoint().port();
}

void HttpServer::start() {
  auto& s = *impl_;
  s.handlers = std::make_unique<asio::thread_pool>(std::max(1, s.options.handler_threads));
  s.work.emplace(s.ioc.get_executor());
  s.accept();
  for (int i = 0; i < std::max(1, s.options.io_threads); ++i)
    s.threads.emplace_back([&s] { s.ioc.run(); });
}

void HttpServer::stop() {
  auto& s = *impl_;
  if (s.stopped.exchange(true)) return;
  beast::error_code ignored;
  s.acceptor.close(ignored);
  s.work.reset();
  s.ioc.stop();
  for (auto& t : s.threads) t.join();
  s.threads.clear();
  if (s.handlers) s.handlers->join();
}

std::size_t HttpServer::connections() const {
  return *impl_->open;
}

}  // namespace shepherd::net
