#pragma once
// Where `shepherd server init DIR` puts each file, and where `shepherd server --dir DIR` reads it
// (docs/install.md). Every file is mode 0600 and DIR 0700.
#include <string>
#include <vector>

namespace shepherd::server {

struct Layout {
  std::string dir;
  std::string config() const { return dir + "/shepherd.yaml"; }
  std::string ca_cert() const { return dir + "/tls/ca.crt"; }  // copy it to every agent
  std::string ca_key() const { return dir + "/tls/ca.key"; }
  std::string server_cert() const { return dir + "/tls/server.crt"; }
  std::string server_key() const { return dir + "/tls/server.key"; }
  std::string admin_token() const { return dir + "/secrets/admin.token"; }
  std::string bootstrap_token() const { return dir + "/secrets/bootstrap.token"; }
  std::string data() const { return dir + "/data"; }
  std::string database() const { return dir + "/data/shepherd.db"; }
};

struct InitOptions {
  std::string listen = "0.0.0.0:8443";
  // The names agents and the CLI reach the server by: the certificate's subject alternative
  // names. Empty: this host's name, localhost, 127.0.0.1.
  std::vector<std::string> names;
  int days = 3650;
};

// Creates DIR (it must not hold an installation already) with a config, a CA, the server's
// certificate and key, an admin token and a bootstrap token. Throws std::runtime_error.
void init(const std::string& dir, const InitOptions& options);

}  // namespace shepherd::server
