#pragma once
#include <string>
#include <vector>

namespace shepherd::server {

// A key and its certificate, PEM.
struct KeyPair {
  std::string key_pem;
  std::string cert_pem;
};

// A self-signed CA (ECDSA P-256, SHA-256) for one Shepherd installation.
KeyPair make_ca(const std::string& common_name, int days);
// The server's certificate, signed by `ca`, for these names: each a DNS name or an IP address
// (validated: a name that is neither is std::invalid_argument).
KeyPair issue_server_certificate(const KeyPair& ca, const std::vector<std::string>& names,
                                 int days);

}  // namespace shepherd::server
