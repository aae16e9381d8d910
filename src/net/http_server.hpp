#pragma once
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace boost::asio::ssl {
class context;
}

namespace shepherd::net {

// One request as a route handler sees it: the whole body is read (up to the body limit) before
// the handler runs.
struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: path and query, still percent-encoded
  std::string path;    // the target without its query, decoded
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::vector<std::string> params;  // the route pattern's groups
  std::string remote;               // the peer's address

  std::string header(const std::string& lower_name) const;
  // The token of "Authorization: Bearer <token>", or "".
  std::string bearer() const;
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;

  static HttpResponse json(int status, const nlohmann::json& body);
  // {"error": {"code", "field", "message"}}: the one error shape of every answer.
  static HttpResponse error(int status, std::string_view code, const std::string& field,
                            const std::string& message);
};

using Handler = std::function<HttpResponse(const HttpRequest&)>;

// Routes by method and a regular expression on the path (matched whole). An unknown path is 404,
// a known path with another method 405 with an Allow header; both JSON.
class Router {
 public:
  void add(const std::string& method, const std::string& pattern, Handler handler);
  void get(const std::string& pattern, Handler h) { add("GET", pattern, std::move(h)); }
  void post(const std::string& pattern, Handler h) { add("POST", pattern, std::move(h)); }
  void del(const std::string& pattern, Handler h) { add("DELETE", pattern, std::move(h)); }
  // Runs before every route but the open ones (the health probe): an answer refuses the request.
  void guard(std::function<std::optional<HttpResponse>(const HttpRequest&)> check,
             std::vector<std::string> open_paths);

  HttpResponse handle(HttpRequest request) const;

 private:
  struct Route {
    std::string method;
    std::regex pattern;
    Handler handler;
  };
  std::vector<Route> routes_;
  std::function<std::optional<HttpResponse>(const HttpRequest&)> guard_;
  std::vector<std::string> open_paths_;
};

struct HttpServerOptions {
  std::size_t max_body_bytes = 1 << 20;     // a larger body is refused (413) before it is read
  std::size_t max_header_bytes = 16 << 10;  // request line and headers; longer: 414 or 431
  // A request (headers and body) must arrive whole within this: a client that trickles bytes is
  // cut off, so slow clients cost memory, never a thread.
  std::chrono::milliseconds request_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};  // a kept-alive connection with no request
  int io_threads = 1;       // event loops (connections, TLS, reading and writing)
  int handler_threads = 8;  // route handlers (they may wait for the controller's loop)
  std::size_t max_connections = 20000;
};

// Serves an upgraded connection (a WebSocket); the server owns nothing of it afterwards.
class UpgradeHandler;

// An HTTP/1.1 server on Boost.Beast: asynchronous reads and writes on `io_threads` event loops, the
// handlers on a pool of their own. Plain TCP, or TLS with a context. Every error it makes itself
// (bad request, limits, timeouts) is answered with the JSON error body.
class HttpServer {
 public:
  HttpServer(const Router& router, HttpServerOptions options = {},
             std::shared_ptr<boost::asio::ssl::context> tls = nullptr);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Requests for `path` that ask for a WebSocket go to `handler` (TLS servers only).
  void on_upgrade(const std::string& path, std::shared_ptr<UpgradeHandler> handler);
  // Binds host:port (0: any free port) and returns the port; throws std::runtime_error.
  int bind(const std::string& host, int port);
  // Starts the event loops and the handler pool (returns at once).
  void start();
  void stop();
  std::size_t connections() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace shepherd::net
