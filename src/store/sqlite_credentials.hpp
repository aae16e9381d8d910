#pragma once
#include <memory>
#include <mutex>

#include "store/credentials.hpp"

namespace SQLite {
class Database;
}

namespace shepherd {

// The credentials in the store's SQLite file (table node_credentials, migration 0008), on a
// connection of its own. Open it after the SqliteStore that migrated the file.
class SqliteCredentials : public CredentialStore {
 public:
  explicit SqliteCredentials(const std::string& path);
  ~SqliteCredentials() override;

  std::string enrol(const std::string& node, TimeMs now) override;
  Check verify(const std::string& node, const std::string& secret) override;
  bool revoke(const std::string& node, TimeMs now) override;
  bool allow_enrolment(const std::string& node) override;

 private:
  std::mutex mu_;
  std::unique_ptr<SQLite::Database> db_;
};

}  // namespace shepherd
