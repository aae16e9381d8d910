// The conformance suite: what a batch of events writes, each record once in its last state, and
// event keys looked up together, on every store.
#include "store_fixtures.hpp"
#include "support/test_databases.hpp"

namespace shepherd::test {
namespace {

TEST_P(StoreConformance, RecordChangedByManyEventsOfABatchEndsInItsLastState) {
  Store& store = *this->store;
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

TEST_P(StoreConformance, TwoChangesFromTheSameReadInOneBatchAreAConflict) {
  Store& store = *this->store;
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

TEST_P(StoreConformance, KnownEventsAnswersForManyKeysAtOnce) {
  Store& store = *this->store;
  EXPECT_TRUE(store.known_events({}).empty());
  store.commit({event("e1"), event("e2"), event("e3")});
  auto known = store.known_events({"e3", "x", "e1", "e1", "y"});
  EXPECT_EQ(known, (std::unordered_set<std::string>{"e1", "e3"}));
  EXPECT_TRUE(store.has_event("e2"));
  EXPECT_FALSE(store.has_event("x"));
}

SHEPHERD_STORE_CONFORMANCE(StoreConformance);

}  // namespace
}  // namespace shepherd::test
