// What a batch of events writes: each record once in its last state, event keys looked up
// together, and a database from before a migration carried forward.
#include <SQLiteCpp/SQLiteCpp.h>

#include <chrono>
#include <thread>

#include "store_fixtures.hpp"

namespace shepherd::test {
namespace {

// A file made by a build that knew only the first migration: the later ones carry its data over.
TEST(SqliteStore, LaterMigrationsKeepTheTimelineAndItsSequence) {
  TempDir dir;
  const std::string path = dir.file("old.db");
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at INTEGER NOT NULL)");
    db.exec(std::string(sqlite_migrations().front().sql));
    db.exec("INSERT INTO schema_migrations VALUES (1, '0001_initial', 0)");
    db.exec(
        "INSERT INTO timeline (at, entity, id, from_status, to_status, reason) VALUES "
        "(1, 'node', 'node-1', '', 'AVAILABLE', 'registered'), "
        "(2, 'node', 'node-1', 'AVAILABLE', 'FAILED', 'by hand')");
    db.exec(
        "INSERT INTO outbox (id, kind, node, job_id, task_id, payload, created_at, status, "
        "attempts, last_error, next_attempt_at, done_at) VALUES "
        "('owed', 'reboot', 'node-1', 'j', '', '{}', 5, 'pending', 2, 'refused', 70, NULL), "
        "('done', 'reboot', 'node-2', 'j', '', '{}', 4, 'done', 0, '', 4, 9)");
  }
  SqliteStore store(path);
  EXPECT_EQ(store.schema_version(), sqlite_migrations().back().version);
  Decision d;
  d.transitions = {transition("job-1", "", "IN_PROGRESS", 3)};
  store.commit({event("e1", d)});
  auto timeline = store.timeline(0, 10);
  ASSERT_EQ(timeline.size(), 3u);
  EXPECT_EQ(timeline[0].seq, 1);
  EXPECT_EQ(timeline[1].transition.reason, "by hand");
  EXPECT_EQ(timeline[2].seq, 3);
  EXPECT_EQ(timeline[2].transition.id, "job-1");
  // The outbox keeps what is owed, with its attempts; what was done is gone.
  auto owed = store.pending_actions(1000, 10);
  ASSERT_EQ(owed.size(), 1u);
  EXPECT_EQ(owed[0].action.id, "owed");
  EXPECT_EQ(owed[0].attempts, 2);
  EXPECT_EQ(owed[0].next_attempt_at, 70);
}

// The WAL is copied back by the store's own thread: commits go on, the log stays bounded, and a
// reader on another connection (a new process) sees everything.
TEST(SqliteStore, BackgroundCheckpointsKeepTheLogBoundedAndLoseNothing) {
  TempDir dir;
  const std::string path = dir.file("state.db");
  SqliteOptions options;
  options.checkpoint_pages = 8;
  options.page_size = 4096;
  {
    SqliteStore store(path, options);
    for (int i = 0; i < 300; ++i) {
      // Appended, not `"e" + std::to_string(i)`: GCC 12 at -O3 warns falsely (-Wrestrict) on that.
      std::string key = "e", job = "job-";
      key += std::to_string(i);
      job += std::to_string(i);
      store.commit({event(key, typical(job, i))});
    }
    for (int wait = 0; wait < 200 && store.background_checkpoints() == 0; ++wait)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_GT(store.background_checkpoints(), 0);
    // 300 commits of several pages each, yet at most four times the threshold (plus the commit
    // that crossed it) in the log.
    EXPECT_LT(fs::file_size(path + "-wal"), std::uintmax_t{4096 + 24} * (4 * 8 + 40));
    SqliteStore reader(path, options);
    EXPECT_EQ(loaded(reader).jobs().size(), 300u);
  }
  SqliteStore reopened(path);
  EXPECT_EQ(loaded(reopened).jobs().size(), 300u);
  EXPECT_EQ(reopened.known_events({"e0", "e299"}).size(), 2u);
}

}  // namespace
}  // namespace shepherd::test
