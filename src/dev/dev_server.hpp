#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "api/http_api.hpp"
#include "sim/simulation.hpp"

namespace shepherd {

class SqliteStore;

struct DevOptions {
  int nodes = 8;
  double speed = 10;  // virtual seconds per wall second
  std::string host = "127.0.0.1";
  int port = 8080;        // 0: any free port
  bool demo = true;       // submit a job and break a GPU so there is something to watch
  std::string store_dir;  // where the SQLite file goes ("": in memory)
  Policy policy;          // from the config file and environment
  RetentionPolicy retention;
  std::string webhook_url;  // secret: notifications also go there when set
};

// `shepherd dev` (Nomad's `agent -dev` shape): the controller with simulated nodes in real time
// (times a speed-up), the real engine, runtime and SQLite store, and the HTTP API on localhost
// plus one route of its own, POST /api/faults, that breaks a simulated node.
class DevServer {
 public:
  explicit DevServer(DevOptions options, std::function<void(const std::string&)> print);
  ~DevServer();

  int port() const { return port_; }
  // Serves until stop() (from a signal handler's thread or a test) or until `seconds` pass (0:
  // forever). This thread runs the controller's loop.
  void run(double seconds = 0);
  void stop() { stopping_ = true; }

 private:
  void fault_route();
  Scenario dev_scenario() const;

  DevOptions options_;
  std::function<void(const std::string&)> print_;
  std::unique_ptr<Simulation> sim_;
  std::unique_ptr<SqliteStore> reader_;  // the API's own connection to a file store
  std::unique_ptr<HttpApi> api_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
};

}  // namespace shepherd
