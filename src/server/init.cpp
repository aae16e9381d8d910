#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "common/private_file.hpp"
#include "common/secrets.hpp"
#include "server/layout.hpp"
#include "server/pki.hpp"
#include "store/sqlite_credentials.hpp"

namespace shepherd::server {
namespace {

void make_private_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
    throw std::runtime_error("cannot create " + path + ": " + std::strerror(errno));
  ::chmod(path.c_str(), 0700);
}

std::string config_text(const Layout& at, const InitOptions& o) {
  // The defaults written out, so an operator sees what can be set (docs/configuration.md).
  return "# Shepherd server configuration (written by `shepherd server init`).\n"
         "cluster_name: shepherd\n"
         "listen: \"" +
         o.listen +
         "\"  # the HTTPS API and the agents' WebSockets\n"
         "store:\n"
         "  path: \"" +
         at.database() +
         "\"\n"
         "policy:\n"
         "  max_retries: 1\n"
         "  diag_level: 1\n"
         "  diag_timeout: 900\n"
         "  reboot_timeout: 1200\n"
         "  heartbeat_timeout: 60\n"
         "# notify:\n"
         "#   webhook_url_file: /etc/shepherd/webhook.url  # mode 0600\n";
}

}  // namespace

void init(const std::string& dir, const InitOptions& options) {
  namespace fs = std::filesystem;
  const Layout at{fs::absolute(dir).lexically_normal().string()};
  if (fs::exists(at.config()))
    throw std::runtime_error(at.dir + " already holds a Shepherd server (" + at.config() +
                             "); choose an empty directory");
  if (options.listen.find('"') != std::string::npos ||
      options.listen.find('\n') != std::string::npos)
    throw std::runtime_error("listen must be HOST:PORT");
  std::vector<std::string> names = options.names;
  if (names.empty()) {
    char host[HOST_NAME_MAX + 1] = {};
    if (::gethostname(host, sizeof host) == 0 && host[0]) names.emplace_back(host);
    names.emplace_back("localhost");
    names.emplace_back("127.0.0.1");
  }
  const KeyPair ca = make_ca("Shepherd CA " + names.front(), options.days);
  const KeyPair server = issue_server_certificate(ca, names, options.days);  // checks the names

  make_private_dir(at.dir);
  make_private_dir(at.dir + "/tls");
  make_private_dir(at.dir + "/secrets");
  make_private_dir(at.data());
  write_private_file(at.ca_key(), ca.key_pem);
  write_private_file(at.ca_cert(), ca.cert_pem);
  write_private_file(at.server_key(), server.key_pem);
  write_private_file(at.server_cert(), server.cert_pem);
  write_private_file(at.admin_token(), random_secret_hex() + "\n");
  write_private_file(at.bootstrap_token(), random_secret_hex() + "\n");
  write_private_file(at.config(), config_text(at, options));  // last: it marks a whole install
}

}  // namespace shepherd::server
