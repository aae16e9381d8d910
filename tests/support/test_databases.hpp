#pragma once
// A fresh database per test, on each store the project has: the conformance suite runs every store
// test on SQLite and on MariaDB. MariaDB's comes from SHEPHERD_TEST_MYSQL_URL (and the password in
// SHEPHERD_TEST_MYSQL_PASSWORD_FILE), which scripts/test sets for the private server it starts;
// each test gets a database of its own there (shepherd_t<pid>_<n>), dropped at its end.
#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "store/mariadb_store.hpp"
#include "store/sqlite_credentials.hpp"
#include "store/sqlite_store.hpp"

namespace shepherd::test {

class TestDatabase {
 public:
  virtual ~TestDatabase() = default;
  // A store on this database, on a connection of its own (migrating it the first time).
  virtual std::unique_ptr<Store> open() = 0;
  // The agents' credentials in this database (after open()).
  virtual std::unique_ptr<CredentialStore> credentials() = 0;
  // The first column of a query's rows, as text, on a connection of the test's own.
  virtual std::vector<std::string> column(const std::string& sql) = 0;
};

class SqliteTestDatabase final : public TestDatabase {
 public:
  SqliteTestDatabase() {
    static std::atomic<int> counter{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("shepherd-store-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  ~SqliteTestDatabase() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::unique_ptr<Store> open() override { return std::make_unique<SqliteStore>(path()); }
  std::unique_ptr<CredentialStore> credentials() override {
    return std::make_unique<SqliteCredentials>(path());
  }
  std::vector<std::string> column(const std::string& sql) override {
    SQLite::Database db(path(), SQLite::OPEN_READONLY);
    SQLite::Statement q(db, sql);
    std::vector<std::string> out;
    while (q.executeStep()) out.push_back(q.getColumn(0).getString());
    return out;
  }
  std::string path() const { return (dir_ / "state.db").string(); }

 private:
  std::filesystem::path dir_;
};

// The MariaDB server the tests may use, or nullopt with the reason in `why`.
inline std::optional<mariadb::Endpoint> test_mariadb(std::string& why) {
  const char* url = std::getenv("SHEPHERD_TEST_MYSQL_URL");
  if (!url || !*url) {
    why =
        "SHEPHERD_TEST_MYSQL_URL is not set: no MariaDB to test against (scripts/test starts a "
        "private one and sets it)";
    return std::nullopt;
  }
  mariadb::Endpoint e = mariadb::parse_url(url);
  if (const char* file = std::getenv("SHEPHERD_TEST_MYSQL_PASSWORD_FILE"); file && *file) {
    std::ifstream in(file);
    std::getline(in, e.password);
  }
  return e;
}

class MariadbTestDatabase final : public TestDatabase {
 public:
  explicit MariadbTestDatabase(mariadb::Endpoint server) : endpoint_(std::move(server)) {
    static std::atomic<int> counter{0};
    const std::string name =
        "shepherd_t" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    mariadb::Connection admin(endpoint_);
    admin.exec("DROP DATABASE IF EXISTS " + name);
    admin.exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin");
    endpoint_.database = name;
  }
  ~MariadbTestDatabase() override {
    try {
      mariadb::Connection admin(endpoint_);
      admin.exec("DROP DATABASE IF EXISTS " + endpoint_.database);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "could not drop " << endpoint_.database << ": " << e.what();
    }
  }
  std::unique_ptr<Store> open() override { return open(MariadbOptions{}); }
  // With other options (tables, migrations); the endpoint is this database's, and no background
  // retention (a test prunes with prune_now).
  std::unique_ptr<MariadbStore> open(MariadbOptions options) {
    options.endpoint = endpoint_;
    options.retention.interval_ms = 0;
    return std::make_unique<MariadbStore>(std::move(options));
  }
  std::unique_ptr<CredentialStore> credentials() override {
    return std::make_unique<MariadbCredentials>(endpoint_);
  }
  std::vector<std::string> column(const std::string& sql) override {
    mariadb::Connection c(endpoint_);
    std::vector<std::string> out;
    for (const auto& row : c.query(sql, {})) out.push_back(row.at(0).value_or("NULL"));
    return out;
  }
  const mariadb::Endpoint& endpoint() const { return endpoint_; }

 private:
  mariadb::Endpoint endpoint_;
};

// Skips the running test when MariaDB is not configured, except in CI (CI set), where the
// suite must run against it and the test fails instead.
inline std::unique_ptr<MariadbTestDatabase> mariadb_database_or_skip() {
  std::string why;
  auto server = test_mariadb(why);
  if (!server) {
    if (std::getenv("CI")) {
      ADD_FAILURE() << why << " (CI must run the MariaDB tests)";
    } else {
      GTEST_LOG_(INFO) << "skipped: " << why;
    }
    return nullptr;
  }
  return std::make_unique<MariadbTestDatabase>(*server);
}

// A test of what only MariaDB has, on a fresh database of its own (`db`); skipped without one.
class MariadbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db = mariadb_database_or_skip();
    if (!db) GTEST_SKIP() << "no MariaDB (SHEPHERD_TEST_MYSQL_URL unset)";
  }
  std::unique_ptr<MariadbTestDatabase> db;
};

// The conformance suite's fixture: TEST_P(StoreConformance, ...) runs once per store ("sqlite",
// "mariadb"); `store` is open on a fresh database, `db` opens more connections to it.
class StoreConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "sqlite") {
      db = std::make_unique<SqliteTestDatabase>();
    } else {
      db = mariadb_database_or_skip();
      if (!db) GTEST_SKIP() << "no MariaDB (SHEPHERD_TEST_MYSQL_URL unset)";
    }
    store = db->open();
  }
  void TearDown() override {
    store.reset();
    db.reset();
  }
  // The same database on a new connection (a restarted controller, a second writer).
  std::unique_ptr<Store> reopen() { return db->open(); }

  std::unique_ptr<TestDatabase> db;
  std::unique_ptr<Store> store;
};

inline std::string store_name(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

#define SHEPHERD_STORE_CONFORMANCE(suite)                                         \
  INSTANTIATE_TEST_SUITE_P(Stores, suite, ::testing::Values("sqlite", "mariadb"), \
                           ::shepherd::test::store_name)

}  // namespace shepherd::test
