#include "store/sqlite_credentials.hpp"

#include <SQLiteCpp/SQLiteCpp.h>

#include <array>
#include <stdexcept>

#include "common/secrets.hpp"

namespace shepherd {

SqliteCredentials::SqliteCredentials(const std::string& path)
    : db_(std::make_unique<SQLite::Database>(path, SQLite::OPEN_READWRITE)) {
  db_->setBusyTimeout(5000);
}

SqliteCredentials::~SqliteCredentials() = default;

std::string SqliteCredentials::enrol(const std::string& node, TimeMs now) {
  EnrolmentRefused::check_name(node);
  std::lock_guard lock(mu_);
  SQLite::Statement known(*db_, "SELECT revoked_at FROM node_credentials WHERE node = ?1");
  known.bind(1, node);
  if (known.executeStep()) {
    throw EnrolmentRefused::known(node, known.getColumn(0).getInt64() > 0);
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
  return secret_matches(q.getColumn(0).getString(), secret) ? Check::Valid : Check::Wrong;
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
