#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "server/layout.hpp"
#include "store/leadership.hpp"

namespace shepherd {
class Store;
class CredentialStore;
class Controller;
class HttpApi;
class FanoutNotifier;
class Notifier;
class SystemClock;
struct Config;
namespace gateway {
class AgentGateway;
}

namespace server {

class LeaseKeeper;
class LeaderOnly;

// The leader lease was lost while this controller led (another took over, or it lapsed): the
// process should end and be started again, as a standby (systemd's Restart=always).
class LeadershipLost : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What the command line sets over the config.
struct ServerFlags {
  std::string store;            // a mariadb:// URL or a SQLite file ("": the config's)
  std::string listen;           // HOST:PORT
  std::string controller_name;  // unique per database
  std::string controller_url;   // https://HOST:PORT, as agents and clients reach it
};

// `shepherd server --dir DIR`: the HTTPS API and the agents' gateway on one TLS port, and, while
// this controller leads, the controller's loop, engine and store (SQLite in DIR, or MariaDB). On
// MariaDB any number of servers share the database: one leads (docs/architecture.md, "Several
// controllers"); the others serve reads and send commands and agents to the leader, and one of them
// takes over when the leader's lease lapses. Restarted after any crash, the leader carries on every
// recovery in flight (the store's outbox).
class Server {
 public:
  Server(const std::string& dir, std::function<void(const std::string&)> print,
         const ServerFlags& flags = {});
  ~Server();

  int port() const { return port_; }
  const ControllerIdentity& identity() const { return me_; }
  // Serves until stop() (a signal's thread, a test): as a standby until this controller wins the
  // lease, then as the leader, this thread running the controller's loop. Throws LeadershipLost.
  void run();
  void stop();
  bool leading() const { return leading_; }

 private:
  void add_routes();
  struct Won {
    std::int64_t epoch;
    std::chrono::steady_clock::time_point at;  // the campaign's send time
  };
  std::optional<Won> campaign();
  void lead(const Won& won);
  void remember_leader(const ClusterView& view);
  void lose(const std::string& why);
  std::optional<std::string> leader_url();

  Layout layout_;
  std::function<void(const std::string&)> print_;
  std::unique_ptr<SystemClock> clock_;
  std::unique_ptr<Config> config_;
  ControllerIdentity me_;
  std::unique_ptr<Store> reader_;
  std::unique_ptr<CredentialStore> credentials_;
  std::unique_ptr<Leadership> leadership_;
  std::function<std::unique_ptr<Store>(std::int64_t)> open_writer_;
  std::string store_description_;
  std::shared_ptr<FanoutNotifier> fanout_;
  std::unique_ptr<Notifier> notifier_;
  std::shared_ptr<gateway::AgentGateway> gateway_;
  std::unique_ptr<Store> store_;  // the leader's writer
  std::unique_ptr<LeaseKeeper> keeper_;
  std::unique_ptr<LeaderOnly> hands_;
  std::unique_ptr<Controller> controller_;
  std::unique_ptr<HttpApi> api_;
  std::string listen_;
  int port_ = 0;

  std::mutex mu_;  // stopping_, lost_, controller_'s creation
  std::condition_variable wake_;
  bool stopping_ = false;
  std::string lost_;
  std::atomic<bool> leading_{false};
  // Who leads, for standbys' redirects and refusals: read by the campaign, at most a second old.
  std::mutex leader_mu_;
  std::optional<std::string> leader_url_;
  std::chrono::steady_clock::time_point leader_read_at_{};
};

}  // namespace server
}  // namespace shepherd
