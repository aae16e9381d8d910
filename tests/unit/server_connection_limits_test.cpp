// The HTTP server's limits on connections, as a fleet of agents meets them: an upgraded WebSocket
// keeps its place in max_connections for as long as it is open, and running out of file
// descriptors makes the server pause and try again, not spin a core, and serve once it can.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <chrono>
#include <mutex>
#include <thread>

#include "net/http_server.hpp"
#include "net/upgrade.hpp"
#include "server/pki.hpp"

namespace shepherd::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

// Accepts every WebSocket and keeps it, with its slot, until told to let them go.
class KeepingHandler : public UpgradeHandler {
 public:
  using Socket = beast::websocket::stream<TlsStream>;
  void accept(TlsStream stream, UpgradeRequest request, std::string, ConnectionSlot slot) override {
    auto ws = std::make_shared<Socket>(std::move(stream));
    ws->async_accept(request, [this, ws, slot](beast::error_code ec) {
      if (ec) return;
      std::lock_guard lock(mu_);
      kept_.push_back({ws, slot});
    });
  }
  std::size_t kept() {
    std::lock_guard lock(mu_);
    return kept_.size();
  }
  void let_go() {
    std::lock_guard lock(mu_);
    kept_.clear();
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<std::shared_ptr<Socket>, ConnectionSlot>> kept_;
};

std::shared_ptr<ssl::context> server_tls() {
  const auto ca = server::make_ca("test CA", 1);
  const auto cert = server::issue_server_certificate(ca, {"127.0.0.1"}, 1);
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->use_certificate_chain(asio::buffer(cert.cert_pem));
  ctx->use_private_key(asio::buffer(cert.key_pem), ssl::context::pem);
  return ctx;
}

// A TLS client: true if the server completed a handshake with it within 2 s.
class TlsClient {
 public:
  explicit TlsClient(int port) : tls_(ssl::context::tls_client), stream_(ioc_, tls_) {
    tls_.set_verify_mode(ssl::verify_none);  // this test is about counting, not trust
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(2));
    beast::get_lowest_layer(stream_).connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
  }
  bool handshake() {
    beast::error_code ec;
    bool done = false;
    stream_.async_handshake(ssl::stream_base::client, [&](beast::error_code e) {
      ec = e;
      done = true;
    });
    ioc_.run();
    return done && !ec;
  }
  // Upgrades to a WebSocket at /ws; true if the server accepted.
  bool upgrade() {
    if (!handshake()) return false;
    ws_ =
        std::make_unique<beast::websocket::stream<beast::ssl_stream<beast::tcp_stream>&>>(stream_);
    beast::error_code ec;
    ws_->handshake("127.0.0.1", "/ws", ec);
    return !ec;
  }

 private:
  asio::io_context ioc_;
  ssl::context tls_;
  beast::ssl_stream<beast::tcp_stream> stream_;
  std::unique_ptr<beast::websocket::stream<beast::ssl_stream<beast::tcp_stream>&>> ws_;
};

template <class Predicate>
bool eventually(Predicate p) {
  for (int i = 0; i < 200; ++i) {
    if (p()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return p();
}

TEST(ConnectionLimits, AnUpgradedWebSocketCountsUntilItsHandlerLetsGo) {
  Router router;
  HttpServerOptions options;
  options.max_connections = 1;
  HttpServer server(router, options, server_tls());
  auto handler = std::make_shared<KeepingHandler>();
  server.on_upgrade("/ws", handler);
  const int port = server.bind("127.0.0.1", 0);
  server.start();

  TlsClient agent(port);
  ASSERT_TRUE(agent.upgrade());
  ASSERT_TRUE(eventually([&] { return handler->kept() == 1; }));
  EXPECT_EQ(server.connections(), 1u);

  // The WebSocket holds the only place: the next connection is closed before its handshake.
  EXPECT_FALSE(TlsClient(port).handshake());

  handler->let_go();
  EXPECT_TRUE(eventually([&] { return server.connections() == 0; }));
  EXPECT_TRUE(TlsClient(port).handshake());
}

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

TEST(ConnectionLimits, OutOfFileDescriptorsTheServerPausesThenServes) {
#ifdef __SANITIZE_ADDRESS__
  GTEST_SKIP() << "the sanitizers' runtimes need descriptors of their own (UBSan's checks open a "
                  "pipe), so they fail first; the release suite runs this test";
#endif
  Router router;
  router.get("/hello", [](const HttpRequest&) { return HttpResponse::json(200, {{"ok", true}}); });
  HttpServer server(router);
  const int port = server.bind("127.0.0.1", 0);
  server.start();

  // The clients' sockets exist before the limit drops, so only the server's accept runs out.
  std::vector<int> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(::socket(AF_INET, SOCK_STREAM, 0));
  rlimit before{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &before), 0);
  rlimit low = before;
  low.rlim_cur = static_cast<rlim_t>(*std::max_element(clients.begin(), clients.end()) + 1);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);

  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(static_cast<uint16_t>(port));
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int fd : clients)
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&at), sizeof at), 0);  // the backlog

  // Every accept now fails with EMFILE. A server that retried at once would burn this second.
  const double cpu_before = cpu_seconds();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const double cpu_used = cpu_seconds() - cpu_before;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &before), 0);
  EXPECT_LT(cpu_used, 0.5) << "the server spins on a failing accept";

  // With descriptors back, the connections waiting in the backlog are served.
  const std::string request = "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  for (int fd : clients) {
    timeval tv{3, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
    char buf[256] = {};
    const ssize_t n = ::recv(fd, buf, sizeof buf - 1, 0);
    ASSERT_GT(n, 12);
    EXPECT_EQ(std::string(buf, 12), "HTTP/1.1 200");
    ::close(fd);
  }
}

}  // namespace
}  // namespace shepherd::net
