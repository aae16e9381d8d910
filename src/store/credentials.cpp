#include "store/credentials.hpp"

#include <openssl/crypto.h>

#include "common/secrets.hpp"

namespace shepherd {

std::string_view to_string(CredentialStore::Check c) {
  switch (c) {
    case CredentialStore::Check::Valid:
      return "valid";
    case CredentialStore::Check::Unknown:
      return "not enrolled";
    case CredentialStore::Check::Wrong:
      return "wrong credential";
    case CredentialStore::Check::Revoked:
      return "revoked";
  }
  return "unknown";
}

EnrolmentRefused EnrolmentRefused::known(const std::string& node, bool revoked) {
  return EnrolmentRefused(
      revoked ? Why::Revoked : Why::Enrolled,
      "node " + node + (revoked ? " is revoked" : " is enrolled already") +
          "; to let it enrol again (a re-installed node, a lost credential) an operator runs: "
          "shepherd node reenrol " +
          node);
}

void EnrolmentRefused::check_name(const std::string& node) {
  if (!valid_id(node))
    throw EnrolmentRefused(Why::InvalidName, "node name must be " + std::string(kIdRule));
}

bool secret_matches(const std::string& stored_hash, const std::string& secret) {
  const std::string given = sha256_hex(secret);
  // Constant time, like the admin token's check.
  return stored_hash.size() == given.size() &&
         CRYPTO_memcmp(stored_hash.data(), given.data(), given.size()) == 0;
}

}  // namespace shepherd
