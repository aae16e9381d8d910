// The HTTP server every Shepherd API runs on, tried as a hostile or careless client would: slow
// clients, huge bodies, long URIs, unknown routes and wrong methods, each answered with the JSON
// error body, and none of them starving the other clients.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "net/http_server.hpp"

namespace shepherd::net {
namespace {

using nlohmann::json;

// A client socket whose every read has a deadline (2 s), so a test cannot hang on the server.
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{2, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_port = htons(static_cast<uint16_t>(port));
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&at), sizeof at) == 0;
  }
  ~RawClient() { ::close(fd_); }
  bool connected() const { return connected_; }
  bool send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // Reads one response (headers and a Content-Length body); "" if none came within the deadline.
  std::string response() {
    std::string data;
    char buf[4096];
    while (true) {
      const auto end = data.find("\r\n\r\n");
      if (end != std::string::npos) {
        const auto cl = data.find("Content-Length: ");
        const std::size_t length = cl == std::string::npos ? 0 : std::stoul(data.substr(cl + 16));
        if (data.size() >= end + 4 + length) {
          std::string out = data.substr(0, end + 4 + length);
          return out;
        }
      }
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return data;
      data.append(buf, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

int status_of(const std::string& response) {
  return response.size() > 12 ? std::stoi(response.substr(9, 3)) : 0;
}
json body_of(const std::string& response) {
  return json::parse(response.substr(response.find("\r\n\r\n") + 4), nullptr, false);
}

class HttpServerTest : public ::testing::Test {
 protected:
  void start(HttpServerOptions options = {}) {
    router_.get("/hello", [](const HttpRequest& r) {
      return HttpResponse::json(200, {{"hello", r.query.count("who") ? r.query.at("who") : ""}});
    });
    router_.post("/echo", [](const HttpRequest& r) { return HttpResponse::json(200, r.body); });
    router_.get("/throws",
                [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("a bug"); });
    server_ = std::make_unique<HttpServer>(router_, options);
    port_ = server_->bind("127.0.0.1", 0);
    server_->start();
  }
  std::string request(const std::string& raw) {
    RawClient c(port_);
    EXPECT_TRUE(c.connected());
    c.send(raw);
    return c.response();
  }

  Router router_;
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
};

TEST_F(HttpServerTest, EveryErrorItMakesIsAJsonBody) {
  start();
  const std::string ok = request("GET /hello?who=a%20b HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(status_of(ok), 200);
  EXPECT_EQ(body_of(ok)["hello"], "a b");

  const std::string unknown = request("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(status_of(unknown), 404);
  EXPECT_EQ(body_of(unknown)["error"]["code"], "not_found");

  const std::string wrong = request("DELETE /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(status_of(wrong), 405);
  EXPECT_NE(wrong.find("Allow: GET"), std::string::npos) << wrong;
  EXPECT_EQ(body_of(wrong)["error"]["field"], "method");

  const std::string long_uri =
      request("GET /" + std::string(20000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(status_of(long_uri), 414);
  EXPECT_EQ(body_of(long_uri)["error"]["code"], "uri_too_long");

  const std::string path_too_long =
      request("GET /" + std::string(4000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(status_of(path_too_long), 414);

  const std::string headers =
      request("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'h') + "\r\n\r\n");
  EXPECT_EQ(status_of(headers), 431);
  EXPECT_TRUE(body_of(headers).contains("error"));

  const std::string garbage = request("NOT HTTP AT ALL\r\n\r\n");
  EXPECT_EQ(status_of(garbage), 400);
  EXPECT_EQ(body_of(garbage)["error"]["code"], "bad_request");

  const std::string bug = request("GET /throws HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(status_of(bug), 500);
  EXPECT_EQ(body_of(bug)["error"]["message"], "internal error");  // no detail leaks
}

TEST_F(HttpServerTest, AnOversizedBodyIsRefusedBeforeItIsSent) {
  start();
  RawClient c(port_);
  // Only the headers go out: the answer must come without the server waiting for (or holding) the
  // 50 MB the client announces.
  c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n");
  const std::string r = c.response();
  EXPECT_EQ(status_of(r), 413) << r;
  EXPECT_EQ(body_of(r)["error"]["field"], "body");
}

TEST_F(HttpServerTest, SlowClientsAreCutOffAndDoNotStarveOthers) {
  HttpServerOptions o;
  o.request_timeout = std::chrono::milliseconds(600);
  o.handler_threads = 2;
  start(o);
  // More slow clients than there are handler threads, each sending one byte at a time.
  std::vector<std::unique_ptr<RawClient>> slow;
  for (int i = 0; i < 24; ++i) {
    slow.push_back(std::make_unique<RawClient>(port_));
    slow.back()->send("G");
  }
  std::atomic<bool> trickling{true};
  std::thread trickle([&] {
    for (int round = 0; round < 20 && trickling; ++round) {
      for (auto& c : slow) c->send("E");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  int answered = 0;
  for (int i = 0; i < 20; ++i)
    if (status_of(request("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")) == 200) ++answered;
  trickling = false;
  trickle.join();
  EXPECT_EQ(answered, 20);
  // Each slow client is answered 408 once its request_timeout has passed.
  int timed_out = 0;
  for (auto& c : slow)
    if (status_of(c->response()) == 408) ++timed_out;
  EXPECT_EQ(timed_out, 24);
}

TEST_F(HttpServerTest, AKeptAliveConnectionServesManyRequests) {
  start();
  RawClient c(port_);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(c.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_EQ(status_of(c.response()), 200) << "request " << i;
  }
  EXPECT_EQ(server_->connections(), 1u);
}

TEST_F(HttpServerTest, TheGuardRefusesAllButTheOpenPaths) {
  router_.get("/healthz", [](const HttpRequest&) { return HttpResponse::json(200, {}); });
  router_.guard(
      [](const HttpRequest& r) -> std::optional<HttpResponse> {
        if (r.bearer() == "s3cret") return std::nullopt;
        return HttpResponse::error(401, "unauthorized", "authorization", "no");
      },
      {"/healthz"});
  start();
  EXPECT_EQ(status_of(request("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")), 200);
  EXPECT_EQ(status_of(request("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")), 401);
  EXPECT_EQ(status_of(request("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")), 401);  // no route leaks
  EXPECT_EQ(
      status_of(request("GET /hello HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n\r\n")),
      401);
  EXPECT_EQ(
      status_of(request("GET /hello HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n\r\n")),
      200);
}

}  // namespace
}  // namespace shepherd::net
