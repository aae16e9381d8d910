// Retention of the event keys and the timeline: by age (from the newest row) and by count, in
// chunks, and in the background for a file store while commits go on.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <thread>

#include "store/sqlite_store.hpp"
#include "store_fixtures.hpp"
#include "support/test_databases.hpp"

namespace shepherd {
namespace {

// `count` events one second apart, each with one timeline entry.
void commit_events(Store& store, int first, int count) {
  std::vector<Commit> batch;
  for (int i = first; i < first + count; ++i) {
    Commit c;
    c.event_key = fmt::format("e{}", i);
    c.event_kind = "node_lost";
    c.at = i * 1000;
    c.decision.transitions.push_back(
        {Entity::Node, "node-1", "AVAILABLE", "UNKNOWN", "lost", c.at});
    batch.push_back(std::move(c));
  }
  store.commit(batch);
}

bool known(Store& store, int i) {
  return store.has_event(fmt::format("e{}", i));
}

SqliteOptions keep(std::int64_t events, std::int64_t timeline, double age = 1e9) {
  SqliteOptions o;
  o.retention.events_max_rows = events;
  o.retention.timeline_max_rows = timeline;
  o.retention.events_max_age = age;
  o.retention.timeline_max_age = age;
  o.retention.chunk_rows = 7;  // several chunks per pass
  return o;
}

// Part of the conformance suite: the same rules on each store.
class Retention : public test::StoreConformance {
 protected:
  // A store on the test's database with this retention, pruned by prune().
  Store& open_with(const SqliteOptions& o) {
    if (auto* file = dynamic_cast<test::SqliteTestDatabase*>(db.get())) {
      SqliteOptions options = o;
      options.retention.interval_ms = 0;
      store = std::make_unique<SqliteStore>(file->path(), options);
    } else {
      MariadbOptions options;
      options.retention = o.retention;
      store = static_cast<test::MariadbTestDatabase&>(*db).open(options);
    }
    return *store;
  }
  PruneCounts prune() {
    if (auto* s = dynamic_cast<SqliteStore*>(store.get())) return s->prune_now();
    return dynamic_cast<MariadbStore&>(*store).prune_now();
  }
};

TEST_P(Retention, KeepsTheNewestRowsByCount) {
  Store& store = open_with(keep(10, 5));
  commit_events(store, 0, 100);
  const PruneCounts n = prune();
  EXPECT_EQ(n.events, 90);
  EXPECT_EQ(n.timeline, 95);
  EXPECT_FALSE(known(store, 89));
  EXPECT_TRUE(known(store, 90));
  EXPECT_TRUE(known(store, 99));
  const auto timeline = store.timeline(0, 1000);
  ASSERT_EQ(timeline.size(), 5u);
  EXPECT_EQ(timeline.back().seq, 100);  // seq goes on: a client's `since` stays meaningful
  commit_events(store, 100, 1);
  EXPECT_EQ(store.timeline(100, 10).front().seq, 101);
  EXPECT_EQ(prune().events, 1);  // a second pass removes only what is new
}

TEST_P(Retention, KeepsRowsYoungerThanTheAgeFromTheNewest) {
  Store& store = open_with(keep(1'000'000, 1'000'000, 50));
  commit_events(store, 0, 100);  // at 0 .. 99 s
  const PruneCounts n = prune();
  EXPECT_EQ(n.events, 49);  // at < 99 - 50 s
  EXPECT_EQ(n.timeline, 49);
  EXPECT_FALSE(known(store, 48));
  EXPECT_TRUE(known(store, 49));
  EXPECT_EQ(store.timeline(0, 1000).front().transition.at, 49'000);
}

TEST(StoreRetention, NothingToPruneIsNoError) {
  SqliteStore store(":memory:", keep(10, 10));
  EXPECT_EQ(store.prune_now().events, 0);
  commit_events(store, 0, 3);
  EXPECT_EQ(store.prune_now().events, 0);
}

TEST(StoreRetention, FileStorePrunesInTheBackgroundWhileCommitsGoOn) {
  test::TempDir dir;
  SqliteOptions o = keep(20, 20);
  o.retention.interval_ms = 10;
  SqliteStore store(dir.file("state.db"), o);
  for (int round = 0; round < 10; ++round) commit_events(store, round * 20, 20);
  for (int i = 0; i < 500 && store.pruned_in_background().events < 180; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(store.pruned_in_background().events, 180);
  EXPECT_FALSE(known(store, 179));
  EXPECT_TRUE(known(store, 180));
  commit_events(store, 200, 5);  // the writer is not held up by the pruner's connection
  EXPECT_TRUE(known(store, 204));
}

SHEPHERD_STORE_CONFORMANCE(Retention);

}  // namespace
}  // namespace shepherd
