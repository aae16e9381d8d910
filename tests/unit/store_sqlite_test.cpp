#include "store_fixtures.hpp"

namespace shepherd::test {
namespace {

TEST(SqliteStoreSchema, FreshDatabaseGetsEveryMigration) {
  ASSERT_FALSE(sqlite_migrations().empty());
  EXPECT_EQ(sqlite_migrations().front().version, 1);
  EXPECT_EQ(sqlite_migrations().front().name, "0001_initial");
  SqliteStore store(":memory:");
  EXPECT_EQ(store.schema_version(), sqlite_migrations().back().version);
  EXPECT_GE(store.schema_version(), 1);
}

TEST(SqliteStoreSchema, ReopeningAFileDatabaseAppliesNothingAgain) {
  TempDir dir;
  std::string path = dir.file("state.db");
  auto applied = [&] {
    SQLite::Database db(path, SQLite::OPEN_READONLY);
    SQLite::Statement q(db, "SELECT version, name, applied_at FROM schema_migrations ORDER BY 1");
    std::vector<std::string> rows;
    while (q.executeStep())
      rows.push_back(q.getColumn(0).getString() + " " + q.getColumn(1).getString() + " " +
                     q.getColumn(2).getString());
    return rows;
  };
  { SqliteStore store(path); }
  auto first = applied();
  ASSERT_EQ(first.size(), sqlite_migrations().size());
  EXPECT_EQ(first[0].rfind("1 0001_initial ", 0), 0u);
  {
    SqliteStore again(path);  // would fail on CREATE TABLE if it re-ran 0001
    EXPECT_EQ(again.schema_version(), sqlite_migrations().back().version);
  }
  EXPECT_EQ(applied(), first);  // same rows, same applied_at
}

TEST(SqliteStoreSchema, SynchronousOptionAndWalMode) {
  TempDir dir;
  for (std::string mode : {"NORMAL", "FULL", "full"}) {
    SqliteStore store(dir.file(mode + ".db"), sync(mode));
    EXPECT_EQ(store.journal_mode(), "wal") << mode;
    store.commit({event("e1", typical("job-1", 10))});
    EXPECT_EQ(loaded(store).jobs().size(), 1u);
  }
  EXPECT_THROW(SqliteStore(dir.file("bad.db"), sync("SOMETIMES")), StoreError);
  EXPECT_EQ(SqliteStore(":memory:").journal_mode(), "memory");
}

}  // namespace
}  // namespace shepherd::test
