#pragma once
#include <functional>
#include <memory>
#include <string>

#include "controller/controller.hpp"
#include "store/store.hpp"

namespace httplib {
class Server;
}

namespace shepherd {

struct HttpApiOptions {
  std::size_t max_body_bytes = 1 << 20;  // larger bodies get 413
  int read_timeout_seconds = 5;          // a client that sends slower is cut off
};

// The HTTP API of every Shepherd server: reads go to the store through `reader` (give it a
// connection of its own, so a slow listing never holds up the loop; `shepherd dev` in memory shares
// the loop's, which serialises them); commands (submit, stop, a dead letter's
// retry) run on the controller's loop through Controller::call. It links no simulator: `shepherd
// dev` adds its fault route through server().
class HttpApi {
 public:
  HttpApi(Controller& controller, Store& reader, HttpApiOptions options = {});
  ~HttpApi();

  // Binds host:port (0: any free port) and returns the port; throws std::runtime_error if it
  // cannot.
  int bind(const std::string& host, int port);
  // Serves on the calling thread until stop().
  void listen();
  void stop();
  httplib::Server& server() { return *http_; }

 private:
  void routes();

  Controller& controller_;
  Store& reader_;
  std::unique_ptr<httplib::Server> http_;
};

}  // namespace shepherd
