// A decision refused whole (defect 1's mechanism) at the runtime: nothing of it is written, it is
// counted, a person is notified, and a redelivery of the event is a duplicate.
#include <gtest/gtest.h>

#include "notify/sinks.hpp"
#include "runtime/runtime.hpp"
#include "store/sqlite_store.hpp"
#include "support/doubles.hpp"

namespace shepherd {
namespace {

using NullDriver = test::AcceptingDriver;
using test::RecordingNotifier;

TEST(RuntimeRefused, IllegalTransitionWritesNothingAndNotifies) {
  SqliteStore store(":memory:");
  NullDriver driver;
  RecordingNotifier notifier;
  auto runtime = std::make_unique<Runtime>(store, driver, notifier, Engine(Policy{}));
  runtime->start();
  runtime->apply(Event{"n1", 0, NodeRegistered{"node-1", "boot-a", "10.0.0.1", "", 8, {}, {}}});
  TaskDefinition def;
  def.command = {"train"};
  runtime->apply(Event{"submit", 0, JobSubmitted{"j", {"node-1"}, 0, def}});
  runtime->apply(Event{"started", 1, TaskStarted{"j.0.0", {}}});
  // A store edited behind the engine's back: the node of a running task is FAILED. The task's
  // failure then asks FAILED -> PENDING, which no table allows.
  Node broken = *runtime->state().node("node-1");
  broken.status = NodeStatus::Failed;
  Commit edit;
  edit.event_key = "hand-edit";
  edit.event_kind = "test";
  edit.decision.nodes.push_back(broken);
  store.commit({edit}, {});
  runtime = std::make_unique<Runtime>(store, driver, notifier, Engine(Policy{}));
  runtime->start();

  const Outcome o = runtime->apply(Event{"exit", 2, TaskExited{"j.0.0", 1, 0, {}, false}});
  EXPECT_NE(o.note.find("refused whole"), std::string::npos) << o.note;
  EXPECT_EQ(runtime->counters().refused_decisions, 1u);
  EXPECT_EQ(runtime->state().job("j")->status, JobStatus::InProgress);  // nothing written
  EXPECT_EQ(runtime->state().task("j.0.0")->status, TaskStatus::InProgress);
  Snapshot stored;
  store.load(stored);
  EXPECT_EQ(stored.job("j")->status, JobStatus::InProgress);
  EXPECT_EQ(stored.task("j.0.0")->status, TaskStatus::InProgress);
  runtime->dispatch(3);
  ASSERT_EQ(notifier.sent.size(), 1u);
  EXPECT_EQ(notifier.sent[0]["kind"], "decision_refused");
  EXPECT_NE(notifier.sent[0]["reason"].get<std::string>().find("FAILED -> PENDING"),
            std::string::npos);
  const Outcome again = runtime->apply(Event{"exit", 2, TaskExited{"j.0.0", 1, 0, {}, false}});
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(runtime->counters().refused_decisions, 1u);
}

}  // namespace
}  // namespace shepherd
