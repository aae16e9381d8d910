// Another writer's changes make a commit fail with VersionConflict: the runtime reloads and decides
// again, a bounded number of times.
#include <gtest/gtest.h>

#include "notify/sinks.hpp"
#include "runtime/runtime.hpp"
#include "store/sqlite_store.hpp"
#include "support/doubles.hpp"

namespace shepherd {
namespace {

// An in-memory SQLite store whose next `conflicts` commits fail as if another writer got there
// first.
class ContestedStore final : public Store {
 public:
  void load(Snapshot& into) override {
    ++loads;
    if (down) throw StoreError("database is locked");
    inner.load(into);
  }
  std::unordered_set<std::string> known_events(const std::vector<std::string>& keys) override {
    if (down) throw StoreError("database is locked");
    return inner.known_events(keys);
  }
  void commit(const std::vector<Commit>& batch,
              const std::vector<std::string>& delivered) override {
    if (conflicts > 0) {
      --conflicts;
      throw VersionConflict("node node-1 is at version 9 (read at version 1)");
    }
    if (down) throw StoreError("database is locked");
    inner.commit(batch, delivered);
  }
  std::vector<PendingAction> pending_actions(TimeMs now, std::size_t limit) override {
    return inner.pending_actions(now, limit);
  }
  void mark_actions_done(const std::vector<std::string>& ids) override {
    inner.mark_actions_done(ids);
  }
  void mark_action_failed(const std::string& id, const std::string& error, TimeMs at) override {
    inner.mark_action_failed(id, error, at);
  }
  void mark_action_dead(const std::string& id, const std::string& error, TimeMs at) override {
    inner.mark_action_dead(id, error, at);
  }
  std::vector<PendingAction> dead_letters(std::size_t limit) override {
    return inner.dead_letters(limit);
  }
  std::optional<PendingAction> revive_action(const std::string& id, TimeMs at) override {
    return inner.revive_action(id, at);
  }
  std::vector<TimelineEntry> timeline(std::int64_t after, std::size_t limit) override {
    return inner.timeline(after, limit);
  }
  std::int64_t duplicate_events() override { return inner.duplicate_events(); }
  std::int64_t begin_incarnation(TimeMs at) override { return inner.begin_incarnation(at); }
  int schema_version() override { return inner.schema_version(); }

  SqliteStore inner{":memory:"};
  int conflicts = 0;
  int loads = 0;
  bool down = false;  // every read and write fails, as with a store that is gone
};

using NoDriver = test::AcceptingDriver;

class ConflictTest : public ::testing::Test {
 protected:
  ConflictTest() : runtime_(store_, driver_, notifier_, Engine(Policy{})) { runtime_.start(); }
  Event registered(const std::string& key) {
    return Event{key, 0, NodeRegistered{"node-" + key, "boot-a", "10.0.0.1", "mlx5_0", 8, {}, {}}};
  }

  ContestedStore store_;
  NoDriver driver_;
  FanoutNotifier notifier_{std::vector<std::shared_ptr<NotificationSink>>{}};
  Runtime runtime_;
};

TEST_F(ConflictTest, AConflictIsDecidedAgainOnFreshState) {
  store_.conflicts = 2;
  runtime_.apply(registered("1"));
  EXPECT_EQ(runtime_.counters().conflicts, 2u);
  EXPECT_EQ(store_.loads, 3);  // start, then once per conflict
  ASSERT_NE(runtime_.state().node("node-1"), nullptr);
  Snapshot stored;
  store_.inner.load(stored);
  EXPECT_EQ(stored.node("node-1")->version, 1);
}

TEST_F(ConflictTest, AWriterThatKeepsLosingGivesUpAndRecordsNothing) {
  store_.conflicts = Runtime::kMaxConflictRetries + 1;
  EXPECT_THROW(runtime_.apply(registered("1")), VersionConflict);
  EXPECT_EQ(runtime_.queued(), 1u);  // kept for the next flush: not every source sends again
  EXPECT_EQ(runtime_.state().node("node-1"), nullptr);  // the cache matches the store
  EXPECT_FALSE(store_.has_event("1"));
  runtime_.apply(registered("1"));  // sent again by its source, once the store is free
  EXPECT_NE(runtime_.state().node("node-1"), nullptr);
}

// Found in review: a commit failing and then its reload failing too left the runtime deciding on an
// empty state (dropping owed actions as superseded, losing deadlines) and the events lost.
TEST_F(ConflictTest, AStoreThatIsDownLosesNothingAndDecidesNothing) {
  runtime_.apply(registered("1"));
  store_.down = true;
  runtime_.enqueue(registered("2"));
  EXPECT_THROW(runtime_.flush(), StoreError);      // the commit fails, and so does the reload
  EXPECT_EQ(runtime_.queued(), 1u);                // the event is kept
  EXPECT_THROW(runtime_.dispatch(0), StoreError);  // nothing goes out on a stale state
  EXPECT_THROW(runtime_.flush(), StoreError);
  store_.down = false;
  runtime_.flush();  // reloads, then decides what was kept
  EXPECT_EQ(runtime_.queued(), 0u);
  EXPECT_NE(runtime_.state().node("node-1"), nullptr);
  EXPECT_NE(runtime_.state().node("node-2"), nullptr);
  EXPECT_TRUE(store_.inner.has_event("2"));
}

}  // namespace
}  // namespace shepherd
