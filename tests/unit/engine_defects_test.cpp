// Defects found by trying the core as a new user would (issue "The core, ready for real nodes"):
// one test each, named after the defect, so none comes back.
#include <gtest/gtest.h>

#include "engine/builder.hpp"
#include "engine_harness.hpp"

namespace shepherd::testing {
namespace {

using J = JobStatus;
using N = NodeStatus;
using T = TaskStatus;

// Defect 1, the rule: a lost node returns, its diagnostic answers before its "started" report.
// The verdict is taken (the diagnostic evidently ran) and the job restarts; nothing is refused.
TEST(EngineDefects, LostNodeVerdictBeforeStartReportRestartsJob) {
  EngineHarness h;
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  h.send(NodeLost{"node-2"});
  h.send(NodeRegistered{"node-2", "boot-a", "", "", 0, {}, {}});  // back, same boot: diagnosed
  ASSERT_EQ(h.node_status("node-2"), N::Pending);
  const std::string op = h.op("node-2");
  h.send(DiagnosticFinished{"node-2", op, Verdict::Pass, "", {}});  // no DiagnosticStarted first
  EXPECT_EQ(h.job_status("j"), J::Restarting);
  EXPECT_EQ(h.job("j").attempt, 1);
  EXPECT_EQ(h.node_status("node-2"), N::Assigned);
  EXPECT_GT(h.node("node-2").deadline_at, 0);  // the start has its deadline
  h.send(DiagnosticStarted{"node-2", op});     // the late start report changes nothing
  EXPECT_EQ(h.node_status("node-2"), N::Assigned);
  h.start_all("j");
  EXPECT_EQ(h.job_status("j"), J::InProgress);
}

// Defect 1, the mechanism: one illegal step voids the whole decision.
TEST(EngineDefects, IllegalTransitionRefusesTheWholeDecision) {
  Snapshot s;
  Node n;
  n.name = "node-1";
  n.status = N::Available;
  s.put(n);
  Job j;
  j.id = "j";
  s.put(j);
  const Event e{"k1", 5, NodeLost{"node-1"}};
  DecisionBuilder b(s, e);
  b.set_job_status("j", J::PendingHealthcheck, "legal");
  b.add_action(ActionKind::Reboot, "node-1");
  EXPECT_FALSE(b.set_node_status("node-1", N::Rebooting, "AVAILABLE -> REBOOTING is illegal"));
  const Decision d = b.finish();
  EXPECT_FALSE(d.changes_state());
  EXPECT_TRUE(d.transitions.empty());
  EXPECT_TRUE(d.actions.empty());
  ASSERT_EQ(d.refused.size(), 1u);
  EXPECT_NE(d.refused[0].find("AVAILABLE -> REBOOTING"), std::string::npos);
}

// Defect 2: a node running a task registers with a new boot id: it crashed, the task is gone.
TEST(EngineDefects, UnexpectedRebootFailsTaskAndDiagnosesNode) {
  EngineHarness h;
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  h.rebooted("node-2", "boot-crash");
  EXPECT_EQ(h.task("j", 1).status, T::Terminated);
  EXPECT_EQ(h.task("j", 0).status, T::Terminated);  // its peer is stopped
  EXPECT_EQ(h.job_status("j"), J::PendingHealthcheck);
  EXPECT_EQ(h.job("j").recovery_cause, RecoveryCause::NodeCrashed);
  EXPECT_EQ(h.node_status("node-2"), N::Pending);
  EXPECT_EQ(h.count(ActionKind::RunDiagnostic), 1u);
  // Healthy after the crash: the job died of the crash, not of its code: restarted, no reboot.
  h.diag("node-2", Verdict::Pass);
  EXPECT_EQ(h.job_status("j"), J::Restarting);
  EXPECT_EQ(h.count(ActionKind::Reboot), 0u);
}

TEST(EngineDefects, UnexpectedRebootDuringStartFailsTheStart) {
  EngineHarness h;
  h.add_nodes(1);
  h.submit("j", {"node-1"});
  ASSERT_EQ(h.node_status("node-1"), N::Assigned);
  h.rebooted("node-1", "boot-crash");
  EXPECT_EQ(h.task("j", 0).status, T::Terminated);
  EXPECT_EQ(h.node_status("node-1"), N::Pending);
}

// Defect 3: a node whose part is COMPLETE is lost: the job runs on and COMPLETES.
TEST(EngineDefects, LostNodeWithCompletedTaskDoesNotFailJob) {
  EngineHarness h;
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  h.exit("j", 0, 0);
  h.send(NodeLost{"node-1"});
  EXPECT_EQ(h.node_status("node-1"), N::Unknown);
  EXPECT_EQ(h.job_status("j"), J::InProgress);
  h.exit("j", 1, 0);
  EXPECT_EQ(h.job_status("j"), J::Complete);
  EXPECT_EQ(h.node("node-1").job_id, "");
  h.send(NodeRegistered{"node-1", "boot-a", "", "", 0, {}, {}});
  EXPECT_EQ(h.node_status("node-1"), N::Available);  // it was never in doubt
}

// Defect 3, past the deadline: the node is FAILED for a person, the job it finished for runs on.
TEST(EngineDefects, LostCompletedNodePastDeadlineFailsOnlyTheNode) {
  EngineHarness h;
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  h.exit("j", 0, 0);
  h.send(NodeLost{"node-1"});
  h.send(OperationTimedOut{"node-1", h.op("node-1")});
  EXPECT_EQ(h.node_status("node-1"), N::Failed);
  EXPECT_EQ(h.job_status("j"), J::InProgress);
  EXPECT_EQ(h.notifications(kNotifyNodeFailed), 1u);
  EXPECT_EQ(h.notifications(kNotifyJobFailed), 0u);
  h.exit("j", 1, 0);
  EXPECT_EQ(h.job_status("j"), J::Complete);
}

// Defect 3, the other way: the job needs every node back for a restart, so from the moment its
// recovery begins the lost node has a deadline.
TEST(EngineDefects, LostCompletedNodeGetsDeadlineWhenRecoveryBegins) {
  EngineHarness h;
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  h.exit("j", 0, 0);
  h.send(NodeLost{"node-1"});
  h.exit("j", 1, 1);
  EXPECT_EQ(h.job_status("j"), J::PendingHealthcheck);
  EXPECT_GT(h.node("node-1").deadline_at, 0);
  h.diag("node-2", Verdict::Fail);
  h.rebooted("node-2");
  EXPECT_EQ(h.job_status("j"), J::PendingRestart);  // waits for node-1
  h.send(NodeRegistered{"node-1", "boot-a", "", "", 0, {}, {}});
  EXPECT_EQ(h.job_status("j"), J::Restarting);
}

// Defect 6: seed 003's "no action" for other exit codes, as a policy value.
TEST(EngineDefects, OtherExitCodesIgnoreIsSeed003) {
  Policy p;
  p.other_exit_codes = OtherExitCodes::Ignore;
  EngineHarness h(p);
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  h.exit("j", 0, 3);
  EXPECT_EQ(h.task("j", 0).status, T::Terminated);
  EXPECT_EQ(h.job_status("j"), J::InProgress);
  EXPECT_EQ(h.node_status("node-1"), N::Assigned);
  EXPECT_EQ(h.count(ActionKind::RunDiagnostic), 0u);
  h.exit("j", 1, 1);  // exit 1 is still a failure
  EXPECT_EQ(h.job_status("j"), J::PendingHealthcheck);
}

TEST(EngineDefects, OtherExitCodesDiagnoseIsTheDefault) {
  EngineHarness h;
  h.add_nodes(1);
  h.run("j", {"node-1"});
  h.exit("j", 0, 3);
  EXPECT_EQ(h.job_status("j"), J::PendingHealthcheck);
  EXPECT_EQ(h.count(ActionKind::RunDiagnostic), 1u);
}

// Defect 7: a node in doubt that loses its heartbeat after its job was stopped comes back to a
// diagnostic, not to service.
TEST(EngineDefects, NodeInDoubtIsNotReturnedToServiceWithoutVerdict) {
  EngineHarness h;
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  h.exit("j", 0, 1);
  ASSERT_EQ(h.node_status("node-1"), N::Pending);
  h.send(JobStopRequested{"j", "test"});
  h.send(NodeLost{"node-1"});
  EXPECT_EQ(h.node_status("node-1"), N::Unknown);
  EXPECT_TRUE(h.node("node-1").needs_diagnostic);
  h.send(NodeRegistered{"node-1", "boot-a", "", "", 0, {}, {}});
  EXPECT_EQ(h.node_status("node-1"), N::Pending);  // diagnosed again, not AVAILABLE
  h.diag("node-1", Verdict::Fail);
  EXPECT_EQ(h.node_status("node-1"), N::Failed);
}

// Defect 4, the rest: an action the node refuses for good ends its operation now, with the node's
// answer as the reason, instead of an endless retry or a wait for the deadline.
TEST(EngineDefects, NodeRefusingItsDiagnosticGetsAnInconclusiveVerdict) {
  EngineHarness h;
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  h.exit("j", 1, 1);  // node-2's task fails: diagnosed
  ASSERT_EQ(h.node_status("node-2"), N::Pending);
  h.send(ActionFailed{"node-2", h.op("node-2"), ActionKind::RunDiagnostic, "dcgmi not found"});
  EXPECT_EQ(h.node("node-2").last_verdict, Verdict::Inconclusive);
  EXPECT_EQ(h.node_status("node-2"), N::Rebooting);     // an inconclusive verdict reboots
  EXPECT_NE(h.job_status("j"), J::PendingHealthcheck);  // the recovery moved on
}

TEST(EngineDefects, NodeRefusingItsRebootFailsTheNodeAndTellsAPerson) {
  EngineHarness h;
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  h.exit("j", 1, 1);
  h.diag("node-2", Verdict::Fail);
  ASSERT_EQ(h.node_status("node-2"), N::Rebooting);
  const std::size_t before = h.actions.size();
  h.send(ActionFailed{"node-2", h.op("node-2"), ActionKind::Reboot, "no permission"});
  EXPECT_EQ(h.node_status("node-2"), N::Failed);
  bool notified = false;
  for (std::size_t i = before; i < h.actions.size(); ++i)
    notified = notified || h.actions[i].kind == ActionKind::Notify;
  EXPECT_TRUE(notified);
}

TEST(EngineDefects, FailureOfAnActionWhoseOperationIsOverIsIgnored) {
  EngineHarness h;
  h.add_nodes(1);
  h.run("j", {"node-1"});
  const Decision d = h.send(ActionFailed{"node-1", "old/0", ActionKind::StartTask, "late"});
  EXPECT_FALSE(d.changes_state());
  EXPECT_EQ(h.job_status("j"), J::InProgress);
}

// Found in review: a lost node released by its job's end kept no deadline and sat UNKNOWN forever
// (a rack loses power: the first node's timeout fails the job, the second was left unwatched).
TEST(EngineDefects, LostNodeKeepsItsDeadlineWhenItsJobEnds) {
  EngineHarness h;
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  h.send(NodeLost{"node-1"});
  h.send(NodeLost{"node-2"});
  h.send(OperationTimedOut{"node-1", h.op("node-1")});
  EXPECT_EQ(h.job_status("j"), J::Failed);
  EXPECT_EQ(h.node_status("node-2"), N::Unknown);
  EXPECT_GT(h.node("node-2").deadline_at, 0);
  h.send(OperationTimedOut{"node-2", h.op("node-2")});
  EXPECT_EQ(h.node_status("node-2"), N::Failed);
  EXPECT_EQ(h.notifications(kNotifyNodeFailed), 2u);
}

// Found in review: a node FAILED alone after its part was done left its job unable to restart, and
// the job waited in PENDING_RESTART with no deadline. It fails instead, and says why.
TEST(EngineDefects, JobMissingARetiredNodeFailsInsteadOfWaiting) {
  EngineHarness h;
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  h.exit("j", 0, 0);
  h.send(NodeLost{"node-1"});
  h.send(OperationTimedOut{"node-1", h.op("node-1")});
  ASSERT_EQ(h.node_status("node-1"), N::Failed);
  h.exit("j", 1, 1);
  h.diag("node-2", Verdict::Fail);
  ASSERT_EQ(h.job_status("j"), J::PendingRestart);
  h.rebooted("node-2");
  EXPECT_EQ(h.job_status("j"), J::Failed);
  EXPECT_NE(h.job("j").reason.find("no longer held by the job"), std::string::npos)
      << h.job("j").reason;
}

}  // namespace
}  // namespace shepherd::testing
