// The conformance suite's records: every test runs on SQLite and on MariaDB
// (tests/support/test_databases.hpp).
#include "store_fixtures.hpp"
#include "support/test_databases.hpp"

namespace shepherd::test {
namespace {

TEST_P(StoreConformance, RoundTripsEveryField) {
  Store& store = *this->store;
  Job job = full_job("job-1");
  Task task = full_task("job-1.1.1", "job-1");
  Task bare = full_task("job-1.1.0", "job-1");
  bare.exit_code.reset();
  bare.started = false;
  Node node = full_node("node-1");
  Decision d;
  d.jobs = {job};
  d.tasks = {task, bare};
  d.nodes = {node};
  store.commit({event("e1", d)});

  Snapshot s = loaded(store);
  ASSERT_NE(s.job("job-1"), nullptr);
  ASSERT_NE(s.task("job-1.1.1"), nullptr);
  ASSERT_NE(s.task("job-1.1.0"), nullptr);
  ASSERT_NE(s.node("node-1"), nullptr);
  EXPECT_EQ(fields(*s.job("job-1")), fields(job));
  EXPECT_EQ(fields(*s.task("job-1.1.1")), fields(task));
  EXPECT_EQ(fields(*s.task("job-1.1.0")), fields(bare));
  EXPECT_EQ(fields(*s.node("node-1")), fields(node));
  EXPECT_EQ(s.job("job-1")->version, 1);  // inserted
  EXPECT_EQ(s.task("job-1.1.1")->version, 1);
  EXPECT_EQ(s.node("node-1")->version, 1);

  // An update writes every field and moves the version on by one.
  Job changed = *s.job("job-1");
  changed.status = JobStatus::Restarting;
  changed.assigned_nodes = {"node-3"};
  changed.task_definition.env["B"] = "2";
  Node free = *s.node("node-1");
  free.status = NodeStatus::Available;
  free.job_id.clear();
  free.last_verdict = Verdict::Pass;
  Decision u;
  u.jobs = {changed};
  u.nodes = {free};
  store.commit({event("e2", u)});
  Snapshot s2 = loaded(store);
  EXPECT_EQ(fields(*s2.job("job-1")), fields(changed));
  EXPECT_EQ(fields(*s2.node("node-1")), fields(free));
  EXPECT_EQ(s2.job("job-1")->version, 2);
  EXPECT_EQ(s2.node("node-1")->version, 2);
  EXPECT_EQ(s2.task("job-1.1.1")->version, 1);
  EXPECT_EQ(s2.available_nodes(10), std::vector<std::string>{"node-1"});
}

TEST_P(StoreConformance, StaleUpdateIsRefusedAndNothingOfTheBatchIsWritten) {
  Store& store = *this->store;
  store.commit({event("e1", typical("job-1", 10))});
  Job read = *loaded(store).job("job-1");  // version 1
  Job first = read;
  first.reason = "first writer";
  store.commit({event("e2", writes(first))});  // now version 2
  Counts before = counts(store);

  Job stale = read;
  stale.reason = "second writer";
  Decision update;
  update.jobs = {stale};
  update.transitions = {transition("job-1", "IN_PROGRESS", "FAILED", 30)};
  update.actions = {action("act-late", 30)};
  Commit repeat = event("e1", {}, 25);
  repeat.duplicate = true;
  try {
    // The first two commits are fine on their own; the stale one sinks the whole batch.
    store.commit({event("e3", typical("job-2", 20)), repeat, event("e4", std::move(update))});
    FAIL() << "expected VersionConflict";
  } catch (const VersionConflict& e) {
    EXPECT_NE(std::string(e.what()).find("job job-1"), std::string::npos) << e.what();
  }
  EXPECT_EQ(counts(store), before);
  EXPECT_EQ(loaded(store).job("job-1")->reason, "first writer");
  EXPECT_EQ(loaded(store).job("job-1")->version, 2);
  EXPECT_EQ(loaded(store).job("job-2"), nullptr);
  EXPECT_FALSE(store.has_event("e3"));
  EXPECT_FALSE(store.has_event("e4"));

  // The store is still usable, and the up-to-date version is accepted.
  Job fresh = *loaded(store).job("job-1");
  fresh.reason = "retried";
  store.commit({event("e4", writes(fresh))});
  EXPECT_EQ(loaded(store).job("job-1")->version, 3);
}

TEST_P(StoreConformance, DoubleInsertAndMissingRecordAreConflicts) {
  Store& store = *this->store;
  store.commit({event("e1", typical("job-1", 10))});
  Counts before = counts(store);

  Decision again;
  again.nodes = {full_node("node-of-job-1")};  // version 0: a create, but it exists
  again.transitions = {transition("x", "", "AVAILABLE", 20)};
  EXPECT_THROW(store.commit({event("e2", again)}), VersionConflict);

  Decision ghost;
  ghost.tasks = {full_task("job-1.9.9", "job-1")};
  ghost.tasks[0].version = 3;  // never stored
  EXPECT_THROW(store.commit({event("e3", ghost)}), VersionConflict);

  // Both creating the same record in one batch: the second loses.
  EXPECT_THROW(store.commit({event("e4", typical("job-2", 30)), event("e5", typical("job-2", 30))}),
               VersionConflict);
  EXPECT_EQ(counts(store), before);
  for (const char* key : {"e2", "e3", "e4", "e5"}) EXPECT_FALSE(store.has_event(key)) << key;
}

TEST_P(StoreConformance, OtherFailuresAreStoreErrorsAndRollBack) {
  Store& store = *this->store;
  Counts before = counts(store);
  Decision orphan;
  orphan.tasks = {full_task("nobody.1.0", "nobody")};  // its job does not exist
  try {
    store.commit({event("e1", orphan)});
    FAIL() << "expected StoreError";
  } catch (const VersionConflict&) {
    FAIL() << "not a version conflict";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("FOREIGN KEY"), std::string::npos) << e.what();
  }
  EXPECT_EQ(counts(store), before);
  EXPECT_FALSE(store.has_event("e1"));

  // A task may come before its job within a batch: the check waits for COMMIT.
  Decision task_first;
  task_first.tasks = {full_task("job-1.1.0", "job-1")};
  store.commit({event("e2", task_first), event("e3", writes(full_job("job-1")))});
  EXPECT_EQ(loaded(store).tasks().size(), 1u);
  store.commit({});  // nothing to do

  // A task's job is part of its identity: changing it is a bug, not a conflict to retry.
  Task moved = *loaded(store).task("job-1.1.0");
  moved.job_id = "job-2";
  store.commit({event("e4", writes(full_job("job-2")))});
  Decision move;
  move.tasks = {moved};
  EXPECT_THROW(
      {
        try {
          store.commit({event("e5", move)});
        } catch (const VersionConflict&) {
          ADD_FAILURE() << "not a version conflict";
        }
      },
      StoreError);
  EXPECT_EQ(loaded(store).task("job-1.1.0")->job_id, "job-1");
}

TEST_P(StoreConformance, EverythingSurvivesReopen) {
  Job job = full_job("job-1");
  Task task = full_task("job-1.1.0", "job-1");
  Node node = full_node("node-1");
  {
    Store& store = *this->store;
    Decision d = typical("job-1", 10);
    d.jobs = {job};
    d.tasks = {task};
    d.nodes = {node};
    d.actions.push_back(action("act-2", 11));
    store.commit({event("e1", d)});
    Commit dup = event("e1");
    dup.duplicate = true;
    store.commit({dup});
    store.mark_action_failed("act-job-1", "refused", 70);
    store.mark_actions_done({"act-2"});
  }
  this->store.reset();
  std::unique_ptr<Store> reopened = reopen();
  Store& store = *reopened;
  Snapshot s = loaded(store);
  ASSERT_NE(s.job("job-1"), nullptr);
  EXPECT_EQ(fields(*s.job("job-1")), fields(job));
  EXPECT_EQ(fields(*s.task("job-1.1.0")), fields(task));
  EXPECT_EQ(fields(*s.node("node-1")), fields(node));
  EXPECT_EQ(s.job("job-1")->version, 1);
  EXPECT_TRUE(store.has_event("e1"));
  EXPECT_EQ(store.duplicate_events(), 1);
  EXPECT_EQ(store.timeline(0, 10).size(), 2u);
  EXPECT_TRUE(store.pending_actions(69, 10).empty());
  auto pending = store.pending_actions(70, 10);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].action.id, "act-job-1");
  EXPECT_EQ(pending[0].attempts, 1);
  EXPECT_EQ(pending[0].last_error, "refused");

  // Carries on from the stored versions.
  Job next = *s.job("job-1");
  next.status = JobStatus::Complete;
  store.commit({event("e2", writes(next))});
  EXPECT_EQ(loaded(store).job("job-1")->version, 2);
}

SHEPHERD_STORE_CONFORMANCE(StoreConformance);

}  // namespace
}  // namespace shepherd::test
