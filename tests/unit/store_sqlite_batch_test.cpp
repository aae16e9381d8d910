// What a batch of events writes: each record once in its last state, event keys looked up
// together, and a database from before a migration carried forward.
#include <SQLiteCpp/SQLiteCpp.h>

#include <chrono>
#include <thread>

#include "store_sqlite_fixtures.hpp"

namespace shepherd::test {
namespace {

TEST(SqliteStore, RecordChangedByManyEventsOfABatchEndsInItsLastState) {
  SqliteStore store(":memory:");
  store.commit({event("e0", typical("job-0", 5))});
  Node node = *loaded(store).node("node-of-job-0");  // version 1

  // Created and changed twice in one batch, as the runtime hands it over: each change carries the
  // version the previous one left.
  Job created = full_job("job-1");
  Job second = created;
  second.version = 1;
  second.reason = "second";
  Job third = second;
  third.version = 2;
  third.reason = "third";
  third.status = JobStatus::PendingRestart;
  Node n1 = node;
  n1.reason = "n1";
  Node n2 = n1;
  n2.version = 2;
  n2.status = NodeStatus::Rebooting;
  n2.reason = "n2";
  Decision d1 = writes(created), d2 = writes(second), d3 = writes(third);
  d1.nodes = {n1};
  d3.nodes = {n2};
  d2.transitions = {transition("job-1", "IN_PROGRESS", "PENDING_HEALTHCHECK", 20)};
  d3.transitions = {transition("job-1", "PENDING_HEALTHCHECK", "PENDING_RESTART", 30)};
  store.commit({event("e1", d1), event("e2", d2), event("e3", d3)});

  Snapshot s = loaded(store);
  EXPECT_EQ(fields(*s.job("job-1")), fields(third));
  EXPECT_EQ(s.job("job-1")->version, 3);  // three changes
  EXPECT_EQ(fields(*s.node("node-of-job-0")), fields(n2));
  EXPECT_EQ(s.node("node-of-job-0")->version, 3);
  // Every event and transition is still recorded, in order.
  auto timeline = store.timeline(0, 100);
  ASSERT_EQ(timeline.size(), 4u);
  EXPECT_EQ(timeline[3].transition.to, "PENDING_RESTART");
  EXPECT_EQ(store.known_events({"e1", "e2", "e3", "e4"}).size(), 3u);

  // The next batch reads the last version.
  Job fourth = third;
  fourth.version = 3;
  fourth.reason = "fourth";
  store.commit({event("e4", writes(fourth))});
  EXPECT_EQ(loaded(store).job("job-1")->version, 4);
}

TEST(SqliteStore, TwoChangesFromTheSameReadInOneBatchAreAConflict) {
  SqliteStore store(":memory:");
  store.commit({event("e1", typical("job-1", 10))});
  Counts before = counts(store);
  Job read = *loaded(store).job("job-1");
  Job a = read, b = read;  // both read version 1: the second would overwrite the first unseen
  a.reason = "a";
  b.reason = "b";
  try {
    store.commit({event("e2", writes(a)), event("e3", writes(b))});
    FAIL() << "expected VersionConflict";
  } catch (const VersionConflict& e) {
    EXPECT_NE(std::string(e.what()).find("job job-1"), std::string::npos) << e.what();
  }
  EXPECT_EQ(counts(store), before);
  EXPECT_TRUE(store.known_events({"e2", "e3"}).empty());
}

TEST(SqliteStore, KnownEventsAnswersForManyKeysAtOnce) {
  SqliteStore store(":memory:");
  EXPECT_TRUE(store.known_events({}).empty());
  store.commit({event("e1"), event("e2"), event("e3")});
  auto known = store.known_events({"e3", "x", "e1", "e1", "y"});
  EXPECT_EQ(known, (std::unordered_set<std::string>{"e1", "e3"}));
  EXPECT_TRUE(store.has_event("e2"));
  EXPECT_FALSE(store.has_event("x"));
}

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
