#pragma once
// `shepherd dev`'s server (4 simulated nodes, no demo, 20x speed) on a free port, running on a
// thread of its own until the object goes; construction returns once /healthz answers.
#include <httplib.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "dev/dev_server.hpp"

namespace shepherd::test {

class RunningDevServer {
 public:
  RunningDevServer() {
    DevOptions o;
    o.nodes = 4;
    o.port = 0;
    o.demo = false;
    o.speed = 20;
    server_ = std::make_unique<DevServer>(o, [](const std::string&) {});
    thread_ = std::thread([this] { server_->run(); });
    httplib::Client probe("127.0.0.1", server_->port());
    for (int i = 0; i < 100 && !probe.Get("/healthz"); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ~RunningDevServer() {
    server_->stop();
    thread_.join();
  }
  RunningDevServer(const RunningDevServer&) = delete;
  RunningDevServer& operator=(const RunningDevServer&) = delete;

  int port() const { return server_->port(); }

 private:
  std::unique_ptr<DevServer> server_;
  std::thread thread_;
};

}  // namespace shepherd::test
