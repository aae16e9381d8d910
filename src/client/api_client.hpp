#pragma once
// The HTTP API's client for the command line (`shepherd job ...`): one request at a time, every
// failure a ClientError with a one-line message fit for a terminal.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>

namespace httplib {
class Client;
}

namespace shepherd::client {

struct ClientOptions {
  std::string server;   // http://host:port or https://host:port
  std::string token;    // secret: sent as Authorization: Bearer, never printed
  std::string ca_file;  // https: the server's CA (`shepherd server init` writes DIR/tls/ca.crt)
  std::chrono::seconds timeout{10};
  std::string token_source = "--token-file or SHEPHERD_TOKEN_FILE";  // for a 401's message
};

// What the user typed; "" where a flag was not given.
struct ClientFlags {
  std::string server;
  std::string token_file;
  std::string ca_file;
};

class ClientError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The environment as a lookup, so tests need not set the process's own.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
std::optional<std::string> process_env(const std::string& name);
// The token in a token file's `content` (surrounding blanks dropped); a ClientError naming `path`
// if it is empty or not one word of printable ASCII (the wrong file, say a certificate).
std::string token_in_file(const std::string& content, const std::string& path);

inline constexpr const char* kDefaultServer = "http://127.0.0.1:8080";

// --server, else SHEPHERD_SERVER, else kDefaultServer; the token from --token-file (its content
// trimmed), else the file SHEPHERD_TOKEN_FILE names, else SHEPHERD_TOKEN; --ca, else SHEPHERD_CA.
// A token file that cannot be read, or is empty, is a ClientError naming the file.
ClientOptions resolve_client_options(const ClientFlags& flags, const EnvLookup& env = process_env);

// The server's rule for ids (job, task, node): 1..128 of [A-Za-z0-9._-]. Such an id needs no
// escaping in a URL path; "." and ".." are refused too, since a proxy may collapse them.
bool is_path_id(const std::string& id);
// `id` checked by is_path_id, ready to put in a path; a ClientError naming `what` otherwise.
std::string path_id(const std::string& what, const std::string& id);

class ApiClient {
 public:
  // Throws ClientError when the server URL is not http(s)://host[:port].
  explicit ApiClient(ClientOptions options);
  ~ApiClient();
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  const std::string& server() const { return base_; }

  // A 2xx answer's JSON body; anything else is a ClientError.
  nlohmann::json get(const std::string& path);
  // `body` null: the request has no body (the command routes read none).
  nlohmann::json post(const std::string& path, const nlohmann::json& body = nullptr);
  // A 2xx answer's body as text, and its headers (names in lower case) when `headers_out` is set.
  std::string get_text(const std::string& path,
                       std::map<std::string, std::string>* headers_out = nullptr);

 private:
  struct Answer {
    std::string body;
    std::map<std::string, std::string> headers;
  };
  Answer send(const std::string& method, const std::string& path, const std::string* body);

  ClientOptions options_;
  std::string base_;  // scheme://host:port, for messages
  std::string host_;
  int port_ = 0;
  std::unique_ptr<httplib::Client> http_;
  bool redirected_ = false;  // this client follows a redirect: it follows no other
};

}  // namespace shepherd::client
