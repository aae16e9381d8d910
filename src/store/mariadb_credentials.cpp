#include "common/secrets.hpp"
#include "store/mariadb_store.hpp"

namespace shepherd {

using mariadb::RowReader;

MariadbCredentials::MariadbCredentials(const mariadb::Endpoint& endpoint)
    : db_(std::make_unique<mariadb::Connection>(endpoint)) {}

MariadbCredentials::~MariadbCredentials() = default;

// Each call is one statement (or a check and one statement): tried once more on a new connection
// when the connection was lost, which repeats nothing an agent would notice.
template <typename F>
auto MariadbCredentials::call(F&& f) {
  std::lock_guard lock(mu_);
  try {
    return f();
  } catch (const mariadb::Error& e) {
    if (!e.connection_lost()) throw;
    db_->reconnect();
    return f();
  }
}

std::string MariadbCredentials::enrol(const std::string& node, TimeMs now) {
  EnrolmentRefused::check_name(node);
  // Made once, outside the retried call: when the first INSERT was written but its answer lost,
  // the retry finds this secret's hash and hands the secret out instead of refusing the node.
  const std::string secret = random_secret_hex();
  return call([&] {
    auto known = db_->query_with(
        "SELECT secret_hash, revoked_at FROM shepherd_node_credentials WHERE node = ?", node);
    if (!known.empty()) {
      RowReader r(known[0]);
      const std::string stored = r.text();
      const bool revoked = r.i64() > 0;
      if (!revoked && secret_matches(stored, secret)) return secret;
      throw EnrolmentRefused::known(node, revoked);
    }
    try {
      db_->run_with(
          "INSERT INTO shepherd_node_credentials (node, secret_hash, enrolled_at) VALUES (?, ?, ?)",
          node, sha256_hex(secret), now);
    } catch (const mariadb::Error& e) {
      if (e.duplicate_key()) throw EnrolmentRefused::known(node, false);  // a race: it won
      throw;
    }
    return secret;
  });
}

CredentialStore::Check MariadbCredentials::verify(const std::string& node,
                                                  const std::string& secret) {
  return call([&] {
    auto rows = db_->query_with(
        "SELECT secret_hash, revoked_at FROM shepherd_node_credentials WHERE node = ?", node);
    if (rows.empty()) return Check::Unknown;
    RowReader r(rows[0]);
    const std::string stored = r.text();
    if (r.i64() > 0) return Check::Revoked;
    return secret_matches(stored, secret) ? Check::Valid : Check::Wrong;
  });
}

bool MariadbCredentials::revoke(const std::string& node, TimeMs now) {
  return call([&] {
    if (db_->run_with("UPDATE shepherd_node_credentials SET revoked_at = ? WHERE node = ? AND "
                      "revoked_at = 0",
                      now, node) > 0)
      return true;
    return !db_->query_with("SELECT 1 FROM shepherd_node_credentials WHERE node = ?", node).empty();
  });
}

bool MariadbCredentials::allow_enrolment(const std::string& node) {
  return call([&] {
    return db_->run_with("DELETE FROM shepherd_node_credentials WHERE node = ?", node) > 0;
  });
}

}  // namespace shepherd
