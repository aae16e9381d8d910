#pragma once
#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "sim/simulation.hpp"

namespace httplib {
class Server;
}

namespace shepherd {

struct DevOptions {
  int nodes = 8;
  double speed = 10;  // virtual seconds per wall second
  std::string host = "127.0.0.1";
  int port = 8080;          // 0: any free port
  bool demo = true;         // submit a job and break a GPU so there is something to watch
  std::string store_dir;    // where the SQLite file goes
  Policy policy;            // from the config file and environment
  std::string webhook_url;  // secret: notifications also go there when set
};

// `shepherd dev`: simulated nodes in real time (times a speed-up), the real engine, runtime and
// SQLite store, and the HTTP API on localhost.
class DevServer {
 public:
  explicit DevServer(DevOptions options, std::function<void(const std::string&)> print);
  ~DevServer();

  int port() const { return port_; }
  // Serves until stop() (from a signal handler's thread or a test) or until `seconds` pass (0:
  // forever).
  void run(double seconds = 0);
  void stop() { stopping_ = true; }

 private:
  void routes();
  Scenario dev_scenario() const;

  DevOptions options_;
  std::function<void(const std::string&)> print_;
  std::mutex mu_;  // guards sim_: the pacing loop and the HTTP handlers take turns
  std::unique_ptr<Simulation> sim_;
  std::unique_ptr<httplib::Server> http_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
};

}  // namespace shepherd
