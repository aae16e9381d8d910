// The conformance suite: the outbox, event keys and the timeline, on every store.
#include "store_fixtures.hpp"
#include "support/test_databases.hpp"

namespace shepherd::test {
namespace {

TEST_P(StoreConformance, DuplicatesAreOnlyCounted) {
  Store& store = *this->store;
  EXPECT_FALSE(store.has_event("e1"));
  store.commit({event("e1", typical("job-1", 10))});
  EXPECT_TRUE(store.has_event("e1"));
  EXPECT_EQ(store.duplicate_events(), 0);
  Counts before = counts(store);

  Commit dup = event("e1", typical("job-2", 20));  // its decision must be ignored
  dup.duplicate = true;
  store.commit({dup, dup});
  store.commit({dup});
  EXPECT_EQ(store.duplicate_events(), 3);
  Counts after = counts(store);
  after.duplicates = before.duplicates;
  EXPECT_EQ(after, before);
  EXPECT_EQ(loaded(store).job("job-2"), nullptr);
}

TEST_P(StoreConformance, OutboxPendingFailedDone) {
  Store& store = *this->store;
  Decision d;
  d.actions = {action("a1", 100), action("a2", 50), action("a3", 100)};
  d.actions[1].kind = ActionKind::Notify;
  d.actions[1].payload = nlohmann::json{{"kind", "job_failed"}, {"job", "job-1"}}.dump();
  store.commit({event("e1", d)});

  auto ids = [](const std::vector<PendingAction>& v) {
    std::vector<std::string> out;
    for (const auto& p : v) out.push_back(p.action.id);
    return out;
  };
  using V = std::vector<std::string>;
  // In commit order (as the runtime delivers them: a node's stop never overtakes its start, even
  // when event times go backwards); only those due.
  EXPECT_EQ(ids(store.pending_actions(200, 10)), (V{"a1", "a2", "a3"}));
  EXPECT_EQ(ids(store.pending_actions(200, 2)), (V{"a1", "a2"}));
  EXPECT_EQ(ids(store.pending_actions(60, 10)), (V{"a2"}));
  EXPECT_TRUE(store.pending_actions(49, 10).empty());

  PendingAction a2 = store.pending_actions(60, 10).at(0);
  EXPECT_EQ(a2.action.kind, ActionKind::Notify);
  EXPECT_EQ(a2.action.payload, d.actions[1].payload);
  EXPECT_EQ(a2.action.node, "node-1");
  EXPECT_EQ(a2.action.job_id, "job-1");
  EXPECT_EQ(a2.action.task_id, "job-1.1.0");
  EXPECT_EQ(a2.action.created_at, 50);
  EXPECT_EQ(a2.attempts, 0);
  EXPECT_EQ(a2.last_error, "");

  store.mark_action_failed("a2", "connection refused", 500);
  EXPECT_EQ(ids(store.pending_actions(200, 10)), (V{"a1", "a3"}));  // not due before 500
  auto due = store.pending_actions(500, 10);
  ASSERT_EQ(ids(due), (V{"a1", "a2", "a3"}));
  EXPECT_EQ(due[1].attempts, 1);
  EXPECT_EQ(due[1].last_error, "connection refused");
  store.mark_action_failed("a2", "timeout", 700);
  due = store.pending_actions(700, 2);
  EXPECT_EQ(due.at(1).attempts, 2);
  EXPECT_EQ(due.at(1).last_error, "timeout");

  store.mark_actions_done({"a1", "a2"});
  EXPECT_EQ(ids(store.pending_actions(10'000, 10)), (V{"a3"}));
  store.mark_action_failed("a1", "late failure", 900);  // a done action stays done
  store.mark_actions_done({"a1", "unknown"});
  EXPECT_EQ(ids(store.pending_actions(10'000, 10)), (V{"a3"}));
}

TEST_P(StoreConformance, RepeatedActionIdIsIgnored) {
  Store& store = *this->store;
  Decision first;
  first.actions = {action("a1", 100)};
  store.commit({event("e1", first)});
  Decision repeat;
  repeat.actions = {action("a1", 200), action("a1", 300)};
  repeat.actions[0].payload = nlohmann::json{{"other", true}}.dump();
  store.commit({event("e2", repeat)});
  auto pending = store.pending_actions(1000, 10);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].action.created_at, 100);
  EXPECT_EQ(pending[0].action.payload, first.actions[0].payload);
  EXPECT_TRUE(store.has_event("e2"));
}

TEST_P(StoreConformance, TimelineIsOrderedAndPages) {
  Store& store = *this->store;
  Decision d1, d2;
  d1.transitions = {transition("job-1", "", "IN_PROGRESS", 30),
                    transition("job-1", "IN_PROGRESS", "PENDING_HEALTHCHECK", 10)};
  d1.transitions[1].entity = Entity::Node;
  d2.transitions = {transition("job-2", "", "IN_PROGRESS", 20),
                    transition("job-2", "IN_PROGRESS", "COMPLETE", 40),
                    transition("job-1", "PENDING_HEALTHCHECK", "FAILED", 50)};
  store.commit({event("e1", d1), event("e2", d2)});

  auto all = store.timeline(0, 100);
  ASSERT_EQ(all.size(), 5u);
  std::vector<Transition> expected = d1.transitions;
  expected.insert(expected.end(), d2.transitions.begin(), d2.transitions.end());
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (i) {
      EXPECT_GT(all[i].seq, all[i - 1].seq);  // written order, not `at` order
    }
    EXPECT_EQ(all[i].transition.entity, expected[i].entity);
    EXPECT_EQ(all[i].transition.id, expected[i].id);
    EXPECT_EQ(all[i].transition.from, expected[i].from);
    EXPECT_EQ(all[i].transition.to, expected[i].to);
    EXPECT_EQ(all[i].transition.reason, expected[i].reason);
    EXPECT_EQ(all[i].transition.at, expected[i].at);
  }
  std::vector<std::int64_t> paged;
  for (std::int64_t after = 0;;) {
    auto page = store.timeline(after, 2);
    if (page.empty()) break;
    EXPECT_LE(page.size(), 2u);
    for (const auto& e : page) paged.push_back(e.seq);
    after = page.back().seq;
  }
  ASSERT_EQ(paged.size(), 5u);
  for (std::size_t i = 0; i < paged.size(); ++i) EXPECT_EQ(paged[i], all[i].seq);
  EXPECT_TRUE(store.timeline(all.back().seq, 10).empty());
}

SHEPHERD_STORE_CONFORMANCE(StoreConformance);

}  // namespace
}  // namespace shepherd::test
