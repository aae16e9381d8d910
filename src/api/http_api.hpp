#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "controller/controller.hpp"
#include "net/http_server.hpp"
#include "store/store.hpp"

namespace shepherd {

struct HttpApiOptions {
  net::HttpServerOptions http;
  std::shared_ptr<boost::asio::ssl::context> tls;  // null: plain HTTP (shepherd dev on loopback)
  // Every route but GET /healthz asks for "Authorization: Bearer <admin_token>"; "" leaves the API
  // open (shepherd dev on loopback, which says so when it starts).
  std::string admin_token;
  // Routes besides GET /healthz that the admin token does not guard, because they check a
  // credential of their own (an agent's enrolment with the bootstrap token).
  std::vector<std::string> open_paths;
  // On a standby controller (no controller to run commands on): the leader's URL, where a command
  // is redirected (307, same method and body); none while no controller leads.
  std::function<std::optional<std::string>()> leader_url;
};

// The HTTP API of every Shepherd server: reads go to the store through `reader` (give it a
// connection of its own, so a slow listing never holds up the loop; `shepherd dev` in memory shares
// the loop's, which serialises them); commands (submit, stop, a dead letter's retry) run on the
// controller's loop through Controller::call. It links no simulator: `shepherd dev` adds its fault
// route, and `shepherd server` its node and log routes, through router() before start().
class HttpApi {
 public:
  HttpApi(Controller& controller, Store& reader, HttpApiOptions options = {});
  // A standby's: reads are served, commands redirected to the leader until set_controller().
  HttpApi(Store& reader, HttpApiOptions options);
  ~HttpApi();

  // This server leads now (or, with nullptr, no longer): commands run on `controller`.
  void set_controller(Controller* controller) { controller_ = controller; }
  // A handler that needs the leader (a command, an agent's log): on a standby it answers with a
  // redirect to the leader, or 503 while none leads.
  net::Handler on_leader(net::Handler handler);

  net::Router& router() { return router_; }
  net::HttpServer& server() { return *http_; }
  // Binds host:port (0: any free port) and returns the port; throws std::runtime_error if it
  // cannot.
  int bind(const std::string& host, int port);
  // Serves on threads of its own until stop().
  void start();
  void stop();

 private:
  void routes();
  Controller& controller() { return *controller_.load(); }

  std::atomic<Controller*> controller_;
  std::function<std::optional<std::string>()> leader_url_;
  Store& reader_;
  net::Router router_;
  std::unique_ptr<net::HttpServer> http_;
};

}  // namespace shepherd
