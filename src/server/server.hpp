#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "server/layout.hpp"

namespace shepherd {
class Store;
class CredentialStore;
class Controller;
class HttpApi;
class FanoutNotifier;
class Notifier;
class SystemClock;
namespace gateway {
class AgentGateway;
}

namespace server {

// `shepherd server --dir DIR`: the controller's loop, engine and store (SQLite in DIR, or MariaDB),
// the HTTPS API with the admin token, and the agents' gateway, all on one TLS port. Restarted on
// the same DIR after any crash, it carries on every recovery in flight (the store's outbox).
class Server {
 public:
  // `store`: a mariadb:// URL or a SQLite file instead of the config's store ("": the config's).
  Server(const std::string& dir, std::function<void(const std::string&)> print,
         const std::string& store = "");
  ~Server();

  int port() const { return port_; }
  // Serves until stop() (a signal's thread, a test); this thread runs the controller's loop.
  void run();
  void stop();

 private:
  void add_routes();

  Layout layout_;
  std::function<void(const std::string&)> print_;
  std::unique_ptr<SystemClock> clock_;
  std::unique_ptr<Store> store_, reader_;
  std::unique_ptr<CredentialStore> credentials_;
  std::string store_description_;
  std::shared_ptr<FanoutNotifier> fanout_;
  std::unique_ptr<Notifier> notifier_;
  std::shared_ptr<gateway::AgentGateway> gateway_;
  std::unique_ptr<Controller> controller_;
  std::unique_ptr<HttpApi> api_;
  std::string listen_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
};

}  // namespace server
}  // namespace shepherd
