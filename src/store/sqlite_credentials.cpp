#include "store/sqlite_credentials.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <openssl/crypto.h>

#include <array>
#include <stdexcept>

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

SqliteCredentials::SqliteCredentials(const std::string& path)
    : db_(std::make_unique<SQLite::Database>(path, SQLite::OPEN_READWRITE)) {
  db_->setBusyTimeout(5000);
}

SqliteCredentials::~SqliteCredentials() = default;

std::string SqliteCredentials::enrol(const std::string& node, TimeMs now) {
  if (!valid_id(node))
    throw EnrolmentRefused(EnrolmentRefused::Why::InvalidName,
                           "node name must be " + std::string(kIdRule));
  std::lock_guard lock(mu_);
  SQLite::Statement known(*db_, "SELECT revoked_at FROM node_credentials WHERE node = ?1");
  known.bind(1, node);
  if (known.executeStep()) {
    const bool revoked = known.getColumn(0).getInt64() > 0;
    throw EnrolmentRefused(
        revoked ? EnrolmentRefused::Why::Revoked : EnrolmentRefused::Why::Enrolled,
        "node " + node + (revoked ? " is revoked" : " is enrolled already") +
            "; to let it enrol again (a re-installed node, a lost credential) an operator runs: "
            "shepherd node reenrol " +
            node);
  }
  const std::string secret = random_secret_hex();
  SQLite::Statement put(*db_,
                        "INSERT INTO node_credentials (node, secret_hash, enrolled_at) "
                        "VALUES (?1, ?2, ?3)");
  put.bind(1, node);
  put.bind(2, sha256_hex(secret));
  put.bind(3, static_cast<std::int64_t>(now));
  put.exec();
  return secret;
}

CredentialStore::Check SqliteCredentials::verify(const std::string& node,
                                                 const std::string& secret) {
  std::lock_guard lock(mu_);
  SQLite::Statement q(*db_, "SELECT secret_hash, revoked_at FROM node_credentials WHERE node = ?1");
  q.bind(1, node);
  if (!q.executeStep()) return Check::Unknown;
  if (q.getColumn(1).getInt64() > 0) return Check::Revoked;
  const std::string stored = q.getColumn(0).getString();
  const std::string given = sha256_hex(secret);
  // Constant time, like the admin token's check.
  if (stored.size() != given.size() ||
      CRYPTO_memcmp(stored.data(), given.data(), given.size()) != 0)
    return Check::Wrong;
  return Check::Valid;
}

bool SqliteCredentials::revoke(const std::string& node, TimeMs now) {
  std::lock_guard lock(mu_);
  SQLite::Statement q(*db_,
                      "UPDATE node_credentials SET revoked_at = ?2 WHERE node = ?1 AND "
                      "revoked_at = 0");
  q.bind(1, node);
  q.bind(2, static_cast<std::int64_t>(now));
  if (q.exec() > 0) return true;
  SQLite::Statement known(*db_, "SELECT 1 FROM node_credentials WHERE node = ?1");
  known.bind(1, node);
  return known.executeStep();
}

bool SqliteCredentials::allow_enrolment(const std::string& node) {
  std::lock_guard lock(mu_);
  SQLite::Statement q(*db_, "DELETE FROM node_credentials WHERE node = ?1");
  q.bind(1, node);
  return q.exec() > 0;
}

}  // namespace shepherd
