// What only the MariaDB store has: its URL, its migrations' rules, table names as settings for a
// shared database, several controllers opening one database, and connections lost under it.
// Needs SHEPHERD_TEST_MYSQL_URL (scripts/test starts a private MariaDB); skipped without it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <thread>

#include "store_fixtures.hpp"
#include "support/test_databases.hpp"

namespace shepherd::test {
namespace {

TEST(MariadbUrl, ReadsEveryPart) {
  auto e = mariadb::parse_url("mariadb://shepherd@db1.example:3307/devops_platform");
  EXPECT_EQ(e.user, "shepherd");
  EXPECT_EQ(e.host, "db1.example");
  EXPECT_EQ(e.port, 3307u);
  EXPECT_EQ(e.database, "devops_platform");
  EXPECT_TRUE(e.socket.empty());
  e = mariadb::parse_url(
      "mariadb://ops@localhost/devops_platform?socket=/run/mysqld/mysqld.sock&io_timeout=5");
  EXPECT_EQ(e.port, 3306u);
  EXPECT_EQ(e.socket, "/run/mysqld/mysqld.sock");
  EXPECT_EQ(e.io_timeout_s, 5);
  EXPECT_EQ(mariadb::parse_url("mariadb://u@[::1]:3306/d").host, "::1");
}

TEST(MariadbUrl, RefusesAPasswordWithoutRepeatingIt) {
  try {
    mariadb::parse_url("mariadb://shepherd:hunter2secret@db1/devops_platform");
    FAIL() << "a password in the URL was accepted";
  } catch (const StoreError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find("hunter2secret"), std::string::npos) << what;
    EXPECT_NE(what.find("SHEPHERD_STORE_PASSWORD"), std::string::npos) << what;
  }
  mariadb::Endpoint e = mariadb::parse_url("mariadb://shepherd@db1/devops_platform");
  e.password = "hunter2secret";
  EXPECT_EQ(e.describe().find("hunter2secret"), std::string::npos);
}

TEST(MariadbUrl, NamesWhatIsWrong) {
  const std::pair<const char*, const char*> bad[] = {
      {"mysql://u@h/d", "mariadb://"},
      {"mariadb://h/d", "no user"},
      {"mariadb://u@h", "no database"},
      {"mariadb://u@h/", "database is empty"},
      {"mariadb://u@h:0/d", "port"},
      {"mariadb://u@h:99999/d", "port"},
      {"mariadb://u@h:33x/d", "port"},
      {"mariadb://u@h/d;drop", "database"},
      {"mariadb://u@h/d?sock=/x", "unknown option 'sock'"},
      {"mariadb://u@h/d?socket=relative", "absolute"},
      {"mariadb://u@h/d?io_timeout=0", "io_timeout"},
  };
  for (const auto& [url, says] : bad) {
    try {
      mariadb::parse_url(url);
      ADD_FAILURE() << url << " was accepted";
    } catch (const StoreError& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << url << ": " << e.what();
    }
  }
}

TEST(MariadbMigrations, EachFollowsTheRules) {
  ASSERT_FALSE(mariadb_migrations().empty());
  EXPECT_EQ(mariadb_migrations().front().name, "0001_initial");
  for (const Migration& m : mariadb_migrations())
    EXPECT_NO_THROW(mariadb_statements(m, MariadbTables{})) << m.name;
  const Migration mixed{9, "0009_mixed", "CREATE TABLE a (x INT);\nALTER TABLE b ADD y INT;\n"};
  EXPECT_THROW(mariadb_statements(mixed, {}), StoreError);
  const Migration open_end{9, "0009_open", "CREATE TABLE a (x INT)\n"};
  EXPECT_THROW(mariadb_statements(open_end, {}), StoreError);
}

MariadbOptions migrating(std::span<const Migration> migrations) {
  MariadbOptions o;
  o.migrations = migrations;
  return o;
}

using Mariadb = MariadbTest;

TEST_F(Mariadb, AFreshDatabaseGetsEveryMigrationOnce) {
  std::vector<std::string> first;
  {
    auto store = db->open(MariadbOptions{});
    EXPECT_EQ(store->schema_version(), mariadb_migrations().back().version);
    first = db->column(
        "SELECT CONCAT(version, ' ', name, ' ', applied_at) FROM "
        "shepherd_schema_migrations ORDER BY version");
    ASSERT_EQ(first.size(), mariadb_migrations().size());
  }
  auto again = db->open(MariadbOptions{});  // would fail on CREATE TABLE if it ran 0001 again
  EXPECT_EQ(db->column("SELECT CONCAT(version, ' ', name, ' ', applied_at) FROM "
                       "shepherd_schema_migrations ORDER BY version"),
            first);
}

TEST_F(Mariadb, AFailedMigrationLeavesTheSchemaAtThePreviousVersion) {
  const Migration good[] = {{1, "0001_one", "CREATE TABLE one (x INT);\n"}};
  db->open(migrating(good));
  const Migration bad[] = {
      good[0], {2, "0002_two", "CREATE TABLE two (x INT);\nCREATE TABLE three (x NOSUCHTYPE);\n"}};
  try {
    db->open(migrating(bad));
    FAIL() << "a broken migration was applied";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("0002_two failed; the schema stays at version 1"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(db->column("SELECT MAX(version) FROM shepherd_schema_migrations"),
            std::vector<std::string>{"1"});
  // The half-made table of 0002 is gone: a fixed 0002 applies cleanly.
  EXPECT_EQ(db->column("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                       "DATABASE() AND TABLE_NAME = 'two'"),
            std::vector<std::string>{"0"});
  const Migration fixed[] = {good[0], {2, "0002_two", "CREATE TABLE two (x INT);\n"}};
  EXPECT_EQ(db->open(migrating(fixed))->schema_version(), 2);
}

TEST_F(Mariadb, ANewerSchemaIsRefused) {
  db->open(MariadbOptions{});
  const Migration older[] = {mariadb_migrations().front()};
  mariadb::Connection c(db->endpoint());
  c.exec("INSERT INTO shepherd_schema_migrations VALUES (999, '0999_future', 0)");
  EXPECT_THROW(db->open(migrating(older)), StoreError);
}

// Seed 001's table names, in a database whose `jobs` is delivery's (seed 004): the recovery's
// records go to the tables the settings name, and nothing touches the other.
TEST_F(Mariadb, TableNamesAreSettings) {
  {
    mariadb::Connection c(db->endpoint());
    c.exec("CREATE TABLE jobs (id BIGINT PRIMARY KEY, name VARCHAR(64))");  // delivery's
    c.exec("INSERT INTO jobs VALUES (1, 'install driver 550')");
  }
  MariadbOptions options;
  options.tables = {"my_ecs_job", "my_ecs_task", "my_ecs_node"};
  auto store = db->open(options);
  store->commit({event("e1", typical("job-1", 10))});
  EXPECT_EQ(db->column("SELECT id FROM my_ecs_job"), std::vector<std::string>{"job-1"});
  EXPECT_EQ(db->column("SELECT id FROM my_ecs_task"), std::vector<std::string>{"job-1.1.0"});
  EXPECT_EQ(db->column("SELECT name FROM my_ecs_node"), std::vector<std::string>{"node-of-job-1"});
  EXPECT_EQ(db->column("SELECT name FROM jobs"), std::vector<std::string>{"install driver 550"});
  EXPECT_EQ(loaded(*store).jobs().size(), 1u);

  options.tables.jobs = "jobs; DROP TABLE jobs";
  try {
    db->open(options);
    FAIL() << "a table name that is not an identifier was accepted";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("JOB_TABLE_NAME"), std::string::npos) << e.what();
  }
}

// Two controllers started at once on an empty database: the schema lock lets one migrate; the
// other finds the work done.
TEST_F(Mariadb, TwoStoresOpeningAnEmptyDatabaseMigrateItOnce) {
  std::unique_ptr<MariadbStore> a, b;
  std::string error_a, error_b;
  auto open = [&](std::unique_ptr<MariadbStore>& into, std::string& error) {
    try {
      into = db->open(MariadbOptions{});
    } catch (const std::exception& e) {
      error = e.what();
    }
  };
  std::thread ta(open, std::ref(a), std::ref(error_a)), tb(open, std::ref(b), std::ref(error_b));
  ta.join();
  tb.join();
  ASSERT_TRUE(a && b) << error_a << " / " << error_b;
  EXPECT_EQ(db->column("SELECT COUNT(*) FROM shepherd_schema_migrations"),
            std::vector<std::string>{std::to_string(mariadb_migrations().size())});
  EXPECT_EQ(a->schema_version(), b->schema_version());
}

// The store's connection killed under it (what a MariaDB restart or a network cut does): a read
// is answered on a new connection; a commit in flight fails as a StoreError and the next one
// succeeds, with nothing of the failed one written.
TEST_F(Mariadb, ALostConnectionIsMadeAgain) {
  auto store = db->open(MariadbOptions{});
  store->commit({event("e1", typical("job-1", 10))});
  auto kill_others = [&] {
    mariadb::Connection c(db->endpoint());
    for (const auto& row :
         c.query_with("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> "
                      "CONNECTION_ID()",
                      db->endpoint().database))
      c.exec("KILL CONNECTION " + *row.at(0));
  };
  kill_others();
  EXPECT_EQ(loaded(*store).jobs().size(), 1u);  // a read: tried again on a new connection
  EXPECT_EQ(store->reconnects(), 1u);
  kill_others();
  EXPECT_THROW(store->commit({event("e2", typical("job-2", 20))}), StoreError);
  EXPECT_FALSE(store->has_event("e2"));
  store->commit({event("e2", typical("job-2", 20))});
  EXPECT_TRUE(store->has_event("e2"));
  EXPECT_EQ(loaded(*store).jobs().size(), 2u);
}

// Seed 004's `devops_platform` has a `nodes` of its own already: the first start says which
// setting names Shepherd's table instead, and leaves the schema as it was.
TEST_F(Mariadb, ATableThatIsThereAlreadyIsNamedWithItsSetting) {
  mariadb::Connection(db->endpoint()).exec("CREATE TABLE nodes (id BIGINT PRIMARY KEY)");
  try {
    db->open(MariadbOptions{});
    FAIL() << "opened over a foreign nodes table";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("NODE_TABLE_NAME"), std::string::npos) << e.what();
  }
  EXPECT_EQ(db->column("SELECT COUNT(*) FROM shepherd_schema_migrations"),
            std::vector<std::string>{"0"});
  EXPECT_EQ(db->column("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                       "DATABASE() AND TABLE_NAME = 'training_jobs'"),
            std::vector<std::string>{"0"});  // what 0001 made before it failed is gone
  MariadbOptions beside;
  beside.tables.nodes = "shepherd_nodes";
  EXPECT_NO_THROW(db->open(beside));
}

}  // namespace
}  // namespace shepherd::test
