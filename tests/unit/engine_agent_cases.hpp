#pragma once
// What real agents report beyond a task's own exit: kernel Xid events (seed 000's GPU errors,
// classified by the agent), and tasks their restart interrupted. Replayed by the transition-table
// coverage test too.
#include "engine_harness.hpp"

namespace shepherd::testing {

inline Decision xid(EngineHarness& h, const std::string& node, int code, const char* action) {
  return h.send(
      XidReported{node, code, "0000:3b:00", action, "NVRM: Xid (PCI:0000:3b:00): ...", "boot-a"});
}

// A reboot-class Xid (79: fallen off the bus) under a running task starts the job's recovery at
// once, as a GPU error of that node: its peers are stopped and it is diagnosed.
inline void xid_reboot_class_under_running_task_starts_recovery(EngineHarness& h) {
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  xid(h, "node-2", 79, "RESTART_BM");
  EXPECT_EQ(h.job_status("j"), JobStatus::PendingHealthcheck);
  EXPECT_EQ(h.job("j").recovery_cause, RecoveryCause::GpuError);
  EXPECT_EQ(h.node_status("node-2"), NodeStatus::Pending);
  EXPECT_EQ(h.count(ActionKind::StopTask), 2u);
  ASSERT_EQ(h.count(ActionKind::RunDiagnostic), 1u);
  EXPECT_EQ(h.actions.back().node, "node-2");
  // The same Xid again (a burst the agent split, or a repeated report) starts nothing more.
  xid(h, "node-2", 79, "RESTART_BM");
  EXPECT_EQ(h.count(ActionKind::RunDiagnostic), 1u);
}

// The same while its task is starting (the node ASSIGNED, the start sent, not yet running): the job
// does not start on that GPU.
inline void xid_reboot_class_under_starting_task_starts_recovery(EngineHarness& h) {
  h.add_nodes(2);
  h.submit("j", {"node-1", "node-2"});
  ASSERT_EQ(h.node_status("node-1"), NodeStatus::Assigned);
  xid(h, "node-1", 79, "RESTART_BM");
  EXPECT_EQ(h.job_status("j"), JobStatus::PendingHealthcheck);
  EXPECT_EQ(h.node_status("node-1"), NodeStatus::Pending);
  EXPECT_EQ(h.count(ActionKind::RunDiagnostic), 1u);
}

// An application-class Xid (13: graphics engine exception) is recorded; the task's own exit, if it
// comes, decides.
inline void xid_application_class_is_recorded_only(EngineHarness& h) {
  h.add_nodes(1);
  h.run("j", {"node-1"});
  xid(h, "node-1", 13, "RESTART_APP");
  EXPECT_EQ(h.job_status("j"), JobStatus::InProgress);
  EXPECT_EQ(h.node_status("node-1"), NodeStatus::InProgress);
  EXPECT_NE(h.node("node-1").reason.find("Xid 13"), std::string::npos);
  EXPECT_EQ(h.count(ActionKind::RunDiagnostic), 0u);
}

// An idle node that logs a reboot-class Xid must not get the next job unproven: it is diagnosed at
// once; a pass puts it back in service, a fault makes it FAILED for a person (no job to reboot
// it for).
inline void xid_reboot_class_on_idle_node_diagnoses_it(EngineHarness& h) {
  h.add_nodes(2);
  xid(h, "node-1", 79, "RESTART_BM");
  EXPECT_EQ(h.node_status("node-1"), NodeStatus::Pending);
  ASSERT_EQ(h.count(ActionKind::RunDiagnostic), 1u);
  h.diag("node-1", Verdict::Pass);
  EXPECT_EQ(h.node_status("node-1"), NodeStatus::Available);

  // One sent before the node's last reboot (kept in the agent's spool) is not about it now.
  h.send(XidReported{"node-2", 79, "0000:3b:00", "RESTART_BM", "...", "an-earlier-boot"});
  EXPECT_EQ(h.node_status("node-2"), NodeStatus::Available);
  xid(h, "node-2", 48, "RESET_GPU");  // double-bit ECC error
  EXPECT_EQ(h.node_status("node-2"), NodeStatus::Pending);
  h.diag("node-2", Verdict::Fail);
  EXPECT_EQ(h.node_status("node-2"), NodeStatus::Failed);
  EXPECT_EQ(h.notifications(kNotifyNodeFailed), 1u);
  EXPECT_EQ(h.count(ActionKind::Reboot), 0u);
}

// An agent that restarts kills the task it left (kill-and-report, src/agent/task_runner.hpp): that
// says nothing about the task's code, so a healthy verdict restarts the job as after a lost node,
// instead of failing it as an application error.
inline void task_interrupted_by_agent_restart_restarts_after_pass(EngineHarness& h) {
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  h.send(TaskExited{h.task("j", 1).id, 0, 9, "node-2", true});
  EXPECT_EQ(h.job_status("j"), JobStatus::PendingHealthcheck);
  EXPECT_EQ(h.job("j").recovery_cause, RecoveryCause::AgentRestarted);
  EXPECT_EQ(h.node_status("node-2"), NodeStatus::Pending);
  h.diag("node-2", Verdict::Pass);
  EXPECT_EQ(h.job_status("j"), JobStatus::Restarting);
  EXPECT_EQ(h.job("j").attempt, 1);
  EXPECT_EQ(h.count(ActionKind::Reboot), 0u);
  EXPECT_EQ(h.notifications(kNotifyJobFailed), 0u);
}

// The same exit without the mark is the task's own death by SIGKILL: a pass blames the code.
inline void task_killed_without_agent_restart_fails_after_pass(EngineHarness& h) {
  h.add_nodes(1);
  h.run("j", {"node-1"});
  h.send(TaskExited{h.task("j", 0).id, 0, 9, "node-1", false});
  h.diag("node-1", Verdict::Pass);
  EXPECT_EQ(h.job_status("j"), JobStatus::Failed);
}

}  // namespace shepherd::testing
