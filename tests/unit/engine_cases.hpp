#pragma once
// The recovery rules (DESIGN.md 1-7) and the open cases, each a function over a fresh harness, so
// the coverage test can replay all of them and check every legal transition is exercised.
#include "engine_harness.hpp"

namespace shepherd::testing {

using J = JobStatus;
using N = NodeStatus;
using T = TaskStatus;

inline void rule1_all_tasks_exit_0_completes_job(EngineHarness& h) {
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  EXPECT_EQ(h.node_status("node-1"), N::InProgress);
  h.exit("j", 0, 0);
  EXPECT_EQ(h.task("j", 0).status, T::Complete);
  EXPECT_EQ(h.node_status("node-1"), N::Assigned);  // held until the job ends
  EXPECT_EQ(h.job_status("j"), J::InProgress);
  h.exit("j", 1, 0);
  EXPECT_EQ(h.job_status("j"), J::Complete);
  EXPECT_EQ(h.node_status("node-1"), N::Available);
  EXPECT_EQ(h.node_status("node-2"), N::Available);
  EXPECT_EQ(h.node("node-1").job_id, "");
}

inline void rule2_exit_1_stops_peers_and_diagnoses_failed_node(EngineHarness& h) {
  h.add_nodes(3);
  h.run("j", {"node-1", "node-2", "node-3"});
  Decision d = h.exit("j", 1, 1);  // node-2, not the job's first node
  EXPECT_EQ(h.task("j", 1).status, T::Terminated);
  EXPECT_EQ(h.job_status("j"), J::PendingHealthcheck);
  EXPECT_EQ(h.node_status("node-2"), N::Pending);
  EXPECT_EQ(h.task("j", 0).status, T::Terminated);
  EXPECT_TRUE(h.task("j", 0).stop_requested);
  EXPECT_EQ(h.node_status("node-1"), N::Assigned);
  ASSERT_EQ(h.count(ActionKind::RunDiagnostic), 1u);
  EXPECT_EQ(h.actions.back().node, "node-2");
  EXPECT_EQ(h.count(ActionKind::StopTask), 2u);
  h.send(DiagnosticStarted{"node-2", h.op("node-2")});
  EXPECT_EQ(h.node_status("node-2"), N::PendingHealthcheck);
}

inline void rule3_diagnostic_pass_fails_job_and_frees_node(EngineHarness& h) {
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  h.exit("j", 0, 1);
  h.diag("node-1", Verdict::Pass);
  EXPECT_EQ(h.job_status("j"), J::Failed);
  EXPECT_EQ(h.node_status("node-1"), N::Available);
  EXPECT_EQ(h.node_status("node-2"), N::Available);
  EXPECT_EQ(h.notifications(kNotifyJobFailed), 1u);
  EXPECT_EQ(h.count(ActionKind::Reboot), 0u);
}

inline void rule4_gpu_fault_with_retry_left_reboots(EngineHarness& h) {
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  h.exit("j", 0, 1);
  h.diag("node-1", Verdict::Fail);
  EXPECT_EQ(h.job_status("j"), J::PendingRestart);
  EXPECT_EQ(h.node_status("node-1"), N::Rebooting);
  EXPECT_EQ(h.node_status("node-2"), N::Assigned);
  EXPECT_EQ(h.count(ActionKind::Reboot), 1u);
  EXPECT_GT(h.node("node-1").deadline_at, 0);
}

inline void rule5_gpu_fault_without_retry_fails_job_and_node(EngineHarness& h) {
  rule4_gpu_fault_with_retry_left_reboots(h);
  h.rebooted("node-1");
  h.start_all("j");
  EXPECT_EQ(h.job("j").attempt, 1);
  h.exit("j", 0, 1);
  h.diag("node-1", Verdict::Fail);
  EXPECT_EQ(h.job_status("j"), J::Failed);
  EXPECT_EQ(h.node_status("node-1"), N::Failed);
  EXPECT_EQ(h.node_status("node-2"), N::Available);
  EXPECT_EQ(h.notifications(kNotifyJobFailed), 1u);
  EXPECT_EQ(h.notifications(kNotifyNodeFailed), 1u);
  EXPECT_EQ(h.count(ActionKind::Reboot), 1u);
}

inline void rule6_rebooted_node_restarts_job_same_indices(EngineHarness& h) {
  rule4_gpu_fault_with_retry_left_reboots(h);
  const auto starts_before = h.count(ActionKind::StartTask);
  h.rebooted("node-1");
  EXPECT_EQ(h.node_status("node-1"), N::Assigned);  // AVAILABLE, then straight back to its job
  EXPECT_EQ(h.job_status("j"), J::Restarting);
  EXPECT_EQ(h.job("j").attempt, 1);
  EXPECT_EQ(h.count(ActionKind::StartTask), starts_before + 2);
  const Task& t0 = h.task("j", 0);
  EXPECT_EQ(t0.id, "j.1.0");
  EXPECT_EQ(t0.node_name, "node-1");
  EXPECT_EQ(t0.attempt, 1);
  EXPECT_EQ(h.task("j", 1).node_name, "node-2");
  const Action& start = h.actions[h.actions.size() - 1];
  const nlohmann::json payload = nlohmann::json::parse(start.payload);
  EXPECT_EQ(payload["env"]["SHEPHERD_JOB_ID"], "j");
  EXPECT_EQ(payload["env"]["SHEPHERD_NODE_INDEX"], "1");
  EXPECT_EQ(payload["env"]["NODE_RANK"], "1");
  EXPECT_EQ(payload["env"]["SHEPHERD_NODE_COUNT"], "2");
  EXPECT_EQ(payload["env"]["NNODES"], "2");
  EXPECT_EQ(payload["env"]["SHEPHERD_ATTEMPT"], "1");
  EXPECT_EQ(payload["node_index"], 1);
  EXPECT_EQ(payload["node_count"], 2);
  EXPECT_EQ(payload["attempt"], 1);
  h.send(TaskStarted{"j.1.0", {}});
  EXPECT_EQ(h.job_status("j"), J::Restarting);  // not until every task runs
  h.send(TaskStarted{"j.1.1", {}});
  EXPECT_EQ(h.job_status("j"), J::InProgress);
  EXPECT_EQ(h.node_status("node-1"), N::InProgress);
  EXPECT_EQ(h.node_status("node-2"), N::InProgress);
  h.exit("j", 0, 0);
  h.exit("j", 1, 0);
  EXPECT_EQ(h.job_status("j"), J::Complete);  // the restarted job can still finish
}

inline void rule7_user_stop_in_progress(EngineHarness& h) {
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  h.send(JobStopRequested{"j", "alice"});
  EXPECT_EQ(h.job_status("j"), J::UserStopped);
  EXPECT_EQ(h.task("j", 0).status, T::Terminated);
  EXPECT_EQ(h.node_status("node-1"), N::Available);
  EXPECT_EQ(h.count(ActionKind::StopTask), 2u);
  h.exit("j", 0, 143, 15);  // the stop's own result changes nothing
  EXPECT_EQ(h.job_status("j"), J::UserStopped);
  EXPECT_EQ(h.count(ActionKind::RunDiagnostic), 0u);
}

inline void reboot_timeout_fails_node_and_job(EngineHarness& h) {
  rule4_gpu_fault_with_retry_left_reboots(h);
  h.rebooted("node-1", "boot-a");  // reconnected, same boot id: not a reboot
  EXPECT_EQ(h.node_status("node-1"), N::Rebooting);
  h.now += seconds(1200);
  h.timeout("node-1");
  EXPECT_EQ(h.node_status("node-1"), N::Failed);
  EXPECT_EQ(h.job_status("j"), J::Failed);
  EXPECT_EQ(h.node_status("node-2"), N::Available);
  EXPECT_EQ(h.notifications(kNotifyRebootTimeout), 1u);
  EXPECT_EQ(h.notifications(kNotifyJobFailed), 1u);
  h.send(NodeRepaired{"node-1", "ops"});
  EXPECT_EQ(h.node_status("node-1"), N::Available);
}

inline void diagnostic_timeout_is_inconclusive_and_reboots(EngineHarness& h) {
  h.add_nodes(1);
  h.run("j", {"node-1"});
  h.exit("j", 0, 1);
  h.send(DiagnosticStarted{"node-1", h.op("node-1")});
  const std::string diag_op = h.op("node-1");
  h.now += seconds(900);
  h.timeout("node-1");
  EXPECT_EQ(h.node("node-1").last_verdict, Verdict::Inconclusive);
  EXPECT_EQ(h.job_status("j"), J::PendingRestart);
  EXPECT_EQ(h.node_status("node-1"), N::Rebooting);
  // The hung diagnostic's late answer is stale.
  Decision late = h.send(DiagnosticFinished{"node-1", diag_op, Verdict::Pass, "", {}});
  EXPECT_FALSE(late.changes_state());
  EXPECT_EQ(h.node_status("node-1"), N::Rebooting);
}

inline void heartbeat_loss_of_running_node_recovers_on_return(EngineHarness& h) {
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  h.send(NodeLost{"node-2"});
  EXPECT_EQ(h.node_status("node-2"), N::Unknown);
  EXPECT_EQ(h.job_status("j"), J::PendingHealthcheck);
  EXPECT_EQ(h.task("j", 1).status, T::Terminated);
  EXPECT_EQ(h.node_status("node-1"), N::Assigned);
  EXPECT_EQ(h.count(ActionKind::RunDiagnostic), 0u);  // cannot diagnose what cannot be reached
  h.rebooted("node-2", "boot-a");                     // heartbeats resume
  EXPECT_EQ(h.node_status("node-2"), N::Pending);
  EXPECT_EQ(h.count(ActionKind::RunDiagnostic), 1u);
  h.diag("node-2", Verdict::Fail);
  EXPECT_EQ(h.job_status("j"), J::PendingRestart);
}

inline void heartbeat_loss_without_return_fails_job(EngineHarness& h) {
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  h.send(NodeLost{"node-2"});
  h.now += seconds(1200);
  h.timeout("node-2");
  EXPECT_EQ(h.node_status("node-2"), N::Failed);
  EXPECT_EQ(h.job_status("j"), J::Failed);
  EXPECT_EQ(h.node_status("node-1"), N::Available);
  EXPECT_EQ(h.notifications(kNotifyNodeFailed), 1u);
}

inline void heartbeat_loss_of_free_node_and_return(EngineHarness& h) {
  h.add_nodes(1);
  h.send(NodeLost{"node-1"});
  EXPECT_EQ(h.node_status("node-1"), N::Unknown);
  EXPECT_GT(h.node("node-1").deadline_at, 0);  // every lost node must return in time
  h.rebooted("node-1", "boot-a");
  EXPECT_EQ(h.node_status("node-1"), N::Available);
  EXPECT_EQ(h.node("node-1").deadline_at, 0);
}

// A free node that never returns does not sit UNKNOWN unnoticed: FAILED, and a person is told.
inline void heartbeat_loss_of_free_node_past_deadline_fails_node(EngineHarness& h) {
  h.add_nodes(1);
  h.send(NodeLost{"node-1"});
  h.send(OperationTimedOut{"node-1", h.op("node-1")});
  EXPECT_EQ(h.node_status("node-1"), N::Failed);
  EXPECT_EQ(h.notifications(kNotifyNodeFailed), 1u);
}

inline void exit_code_137_is_a_failure_that_gets_diagnosed(EngineHarness& h) {
  h.add_nodes(1);
  h.run("j", {"node-1"});
  h.exit("j", 0, 137);
  EXPECT_EQ(h.job_status("j"), J::PendingHealthcheck);
  EXPECT_EQ(h.count(ActionKind::RunDiagnostic), 1u);
}

inline void exit_code_139_segfault_is_a_failure_that_gets_diagnosed(EngineHarness& h) {
  h.add_nodes(1);
  h.run("j", {"node-1"});
  h.exit("j", 0, 139);
  EXPECT_EQ(h.job_status("j"), J::PendingHealthcheck);
  EXPECT_EQ(h.count(ActionKind::RunDiagnostic), 1u);
}

inline void app_exit_code_policy_fails_without_diagnostic(EngineHarness& h) {
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  h.exit("j", 0, 2);  // policy app_exit_codes: [2]
  EXPECT_EQ(h.job_status("j"), J::Failed);
  EXPECT_EQ(h.count(ActionKind::RunDiagnostic), 0u);
  EXPECT_EQ(h.node_status("node-1"), N::Available);
  EXPECT_EQ(h.notifications(kNotifyJobFailed), 1u);
}

inline void duplicate_event_changes_nothing(EngineHarness& h) {
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  h.exit("j", 0, 1);
  const auto actions = h.actions.size();
  Decision again = h.send(TaskExited{"j.0.0", 1, 0, {}, false});
  EXPECT_FALSE(again.changes_state());
  EXPECT_EQ(h.actions.size(), actions);
  Decision start_again = h.send(TaskStarted{"j.0.1", {}});
  EXPECT_FALSE(start_again.changes_state());
}

inline void stale_task_event_after_restart_is_ignored(EngineHarness& h) {
  rule6_rebooted_node_restarts_job_same_indices(h);  // ends COMPLETE; use a fresh job below
  h.add_nodes(4);
  h.run("k", {"node-3", "node-4"});
  h.exit("k", 0, 1);
  h.diag("node-3", Verdict::Fail);
  h.rebooted("node-3");
  h.start_all("k");
  ASSERT_EQ(h.job_status("k"), J::InProgress);
  // A late report of attempt 0 must not touch attempt 1.
  Decision stale = h.send(TaskExited{"k.0.1", 1, 0, {}, false});
  EXPECT_TRUE(stale.transitions.empty());  // only the old task's exit code is recorded
  EXPECT_TRUE(stale.actions.empty());
  EXPECT_EQ(h.job_status("k"), J::InProgress);
  EXPECT_EQ(h.task("k", 1).status, T::InProgress);
  EXPECT_FALSE(h.send(TaskStarted{"k.0.0", {}}).changes_state());
}

inline void two_tasks_failing_at_once_one_recovery(EngineHarness& h) {
  h.add_nodes(3);
  h.run("j", {"node-1", "node-2", "node-3"});
  h.exit("j", 0, 1);
  h.exit("j", 1, 1);                                  // failed on its own, not from our stop
  h.exit("j", 2, 143, 15);                            // our stop's result
  h.exit("j", 1, 1);                                  // a repeat
  EXPECT_EQ(h.count(ActionKind::RunDiagnostic), 2u);  // node-1 and node-2, once each
  EXPECT_EQ(h.node_status("node-3"), N::Assigned);
  h.diag("node-1", Verdict::Fail);
  EXPECT_EQ(h.job_status("j"), J::PendingHealthcheck);  // waits for node-2's verdict
  h.diag("node-2", Verdict::Fail);
  EXPECT_EQ(h.job_status("j"), J::PendingRestart);
  EXPECT_EQ(h.count(ActionKind::Reboot), 2u);
  h.rebooted("node-1");
  EXPECT_EQ(h.job_status("j"), J::PendingRestart);  // node-2 not back yet
  h.rebooted("node-2");
  EXPECT_EQ(h.job_status("j"), J::Restarting);
  EXPECT_EQ(h.job("j").attempt, 1);  // one recovery
}

inline void failure_while_restarting_uses_no_second_retry(EngineHarness& h) {
  rule4_gpu_fault_with_retry_left_reboots(h);
  h.rebooted("node-1");
  ASSERT_EQ(h.job_status("j"), J::Restarting);
  h.send(TaskStarted{"j.1.0", {}});
  h.exit("j", 0, 1);  // fails before the job is running again
  EXPECT_EQ(h.job_status("j"), J::PendingHealthcheck);
  EXPECT_EQ(h.task("j", 1).status, T::Terminated);  // the peer that was starting is stopped
  h.diag("node-1", Verdict::Fail);
  EXPECT_EQ(h.job_status("j"), J::Failed);
  EXPECT_EQ(h.node_status("node-1"), N::Failed);
}

inline void user_stop_pending_healthcheck_lets_diagnostic_finish(EngineHarness& h) {
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  h.exit("j", 0, 1);
  h.send(JobStopRequested{"j", "alice"});
  EXPECT_EQ(h.job_status("j"), J::UserStopped);
  EXPECT_EQ(h.node_status("node-2"), N::Available);
  EXPECT_EQ(h.node_status("node-1"), N::Pending);  // its diagnostic still runs
  h.diag("node-1", Verdict::Fail);
  EXPECT_EQ(h.node_status("node-1"), N::Failed);  // no job to reboot for: an operator looks
  EXPECT_EQ(h.notifications(kNotifyNodeFailed), 1u);
  EXPECT_EQ(h.count(ActionKind::Reboot), 0u);
}

inline void user_stop_pending_restart_lets_reboot_finish(EngineHarness& h) {
  rule4_gpu_fault_with_retry_left_reboots(h);
  h.send(JobStopRequested{"j", ""});
  EXPECT_EQ(h.job_status("j"), J::UserStopped);
  EXPECT_EQ(h.node_status("node-2"), N::Available);
  EXPECT_EQ(h.node_status("node-1"), N::Rebooting);
  h.rebooted("node-1");
  EXPECT_EQ(h.node_status("node-1"), N::Available);
  EXPECT_EQ(h.node("node-1").job_id, "");
  EXPECT_EQ(h.job("j").attempt, 0);  // no restart
}

inline void user_stop_restarting(EngineHarness& h) {
  rule4_gpu_fault_with_retry_left_reboots(h);
  h.rebooted("node-1");
  ASSERT_EQ(h.job_status("j"), J::Restarting);
  h.send(JobStopRequested{"j", ""});
  EXPECT_EQ(h.job_status("j"), J::UserStopped);
  EXPECT_EQ(h.task("j", 0).status, T::Terminated);
  EXPECT_EQ(h.node_status("node-1"), N::Available);
}

inline void user_stop_finished_job_is_refused(EngineHarness& h) {
  rule1_all_tasks_exit_0_completes_job(h);
  Decision d = h.send(JobStopRequested{"j", ""});
  ASSERT_TRUE(d.rejection.has_value());
  EXPECT_EQ(d.rejection->code, RejectionCode::Conflict);
  EXPECT_FALSE(d.changes_state());
  EXPECT_EQ(h.job_status("j"), J::Complete);
  Decision missing = h.send(JobStopRequested{"nope", ""});
  ASSERT_TRUE(missing.rejection.has_value());
  EXPECT_EQ(missing.rejection->code, RejectionCode::NotFound);
}

inline void node_lost_during_diagnosis_is_diagnosed_again_on_return(EngineHarness& h) {
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  h.exit("j", 0, 1);
  h.send(DiagnosticStarted{"node-1", h.op("node-1")});
  h.send(NodeLost{"node-1"});
  EXPECT_EQ(h.node_status("node-1"), N::Unknown);
  EXPECT_EQ(h.job_status("j"), J::PendingHealthcheck);
  h.rebooted("node-1", "boot-z");
  EXPECT_EQ(h.node_status("node-1"), N::Pending);
  EXPECT_EQ(h.count(ActionKind::RunDiagnostic), 2u);
  h.diag("node-1", Verdict::Pass);
  EXPECT_EQ(h.job_status("j"), J::Failed);  // it began with task exit 1: the application's
}

inline void task_that_never_starts_times_out_and_is_recovered(EngineHarness& h) {
  h.add_nodes(2);
  h.submit("j", {"node-1", "node-2"});
  h.send(TaskStarted{"j.0.0", {}});
  EXPECT_EQ(h.node("node-1").deadline_at, 0);  // started: no deadline left
  h.now += seconds(600);
  h.timeout("node-2");
  EXPECT_EQ(h.task("j", 1).status, T::Terminated);
  EXPECT_EQ(h.job_status("j"), J::PendingHealthcheck);
  EXPECT_EQ(h.node_status("node-2"), N::Pending);
  EXPECT_EQ(h.count(ActionKind::RunDiagnostic), 1u);
}

inline void lost_node_back_healthy_restarts_without_reboot(EngineHarness& h) {
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  h.send(NodeLost{"node-2"});
  h.rebooted("node-2", "boot-a");
  h.diag("node-2", Verdict::Pass);
  EXPECT_EQ(h.job_status("j"), J::Restarting);
  EXPECT_EQ(h.job("j").attempt, 1);
  EXPECT_EQ(h.count(ActionKind::Reboot), 0u);
  h.start_all("j");
  EXPECT_EQ(h.job_status("j"), J::InProgress);
  // Lost again with no retry left: healthy on return, but the job fails.
  h.send(NodeLost{"node-2"});
  h.rebooted("node-2", "boot-a");
  h.diag("node-2", Verdict::Pass);
  EXPECT_EQ(h.job_status("j"), J::Failed);
  EXPECT_EQ(h.node_status("node-2"), N::Available);
}

inline void held_node_lost_during_pending_restart_delays_restart(EngineHarness& h) {
  rule4_gpu_fault_with_retry_left_reboots(h);
  h.send(NodeLost{"node-2"});
  EXPECT_EQ(h.node_status("node-2"), N::Unknown);
  h.rebooted("node-1");
  EXPECT_EQ(h.job_status("j"), J::PendingRestart);  // waits for node-2
  EXPECT_EQ(h.node_status("node-1"), N::Available);
  h.rebooted("node-2", "boot-a");
  EXPECT_EQ(h.job_status("j"), J::Restarting);
}

inline void diagnostic_fault_on_free_node_fails_it(EngineHarness& h) {
  // Lost while running, job then stopped: the node is still diagnosed on its return.
  h.add_nodes(1);
  h.run("j", {"node-1"});
  h.send(NodeLost{"node-1"});
  h.send(JobStopRequested{"j", ""});
  EXPECT_GT(h.node("node-1").deadline_at, 0);  // no job waits for it; past it, a person is told
  h.rebooted("node-1", "boot-a");
  EXPECT_EQ(h.node_status("node-1"), N::Pending);
  h.diag("node-1", Verdict::Pass);
  EXPECT_EQ(h.node_status("node-1"), N::Available);
}

inline void failed_task_before_start_is_recovered(EngineHarness& h) {
  h.add_nodes(2);
  h.submit("j", {"node-1", "node-2"});
  h.exit("j", 0, 1);  // exits before it reported running
  EXPECT_EQ(h.node_status("node-1"), N::Pending);
  EXPECT_EQ(h.node_status("node-2"), N::Assigned);
  h.diag("node-1", Verdict::Fail);
  h.rebooted("node-1");
  h.start_all("j");
  EXPECT_EQ(h.job_status("j"), J::InProgress);
}

inline void operator_marks_free_node_failed_path(EngineHarness& h) {
  // AVAILABLE -> UNKNOWN -> FAILED via a lost node that an operator later repairs.
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  h.exit("j", 0, 1);
  h.send(NodeLost{"node-1"});  // lost while PENDING
  h.now += seconds(1200);
  h.timeout("node-1");
  EXPECT_EQ(h.node_status("node-1"), N::Failed);
  EXPECT_EQ(h.job_status("j"), J::Failed);
}

inline void restarted_tasks_can_finish_before_all_report_running(EngineHarness& h) {
  rule4_gpu_fault_with_retry_left_reboots(h);
  h.rebooted("node-1");
  h.send(TaskStarted{"j.1.0", {}});
  h.exit("j", 0, 0);
  h.exit("j", 1, 0);  // its start report never came
  EXPECT_EQ(h.job_status("j"), J::Complete);
}

inline void app_exit_code_while_restarting_fails_job(EngineHarness& h) {
  rule4_gpu_fault_with_retry_left_reboots(h);
  h.rebooted("node-1");
  h.exit("j", 1, 2);  // policy app_exit_codes: [2]
  EXPECT_EQ(h.job_status("j"), J::Failed);
}

inline void verdict_before_start_report(EngineHarness& h) {
  // A fast diagnostic may answer before its start report: the verdict shows it ran
  // (PENDING_HEALTHCHECK), then the rules go on as usual.
  h.add_nodes(4);
  h.run("a", {"node-1"});
  h.exit("a", 0, 1);
  h.send(DiagnosticFinished{"node-1", h.op("node-1"), Verdict::Fail, "", {}});
  EXPECT_EQ(h.node_status("node-1"), N::Rebooting);
  h.run("b", {"node-2"});
  h.exit("b", 0, 1);
  h.send(DiagnosticFinished{"node-2", h.op("node-2"), Verdict::Pass, "", {}});
  EXPECT_EQ(h.node_status("node-2"), N::Available);
  // A diagnostic that never reports at all times out from PENDING: inconclusive, a fault.
  h.run("c", {"node-3"});
  h.exit("c", 0, 1);
  h.send(JobStopRequested{"c", ""});
  h.timeout("node-3");
  EXPECT_EQ(h.node_status("node-3"), N::Failed);
  h.run("d", {"node-4"});
  h.exit("d", 0, 1);
  h.timeout("node-4");
  EXPECT_EQ(h.node_status("node-4"), N::Rebooting);
}

inline void mixed_verdicts_reboot_only_the_faulty_node(EngineHarness& h) {
  h.add_nodes(2);
  h.run("j", {"node-1", "node-2"});
  h.exit("j", 0, 1);
  h.exit("j", 1, 1);
  h.diag("node-1", Verdict::Fail);
  h.diag("node-2", Verdict::Pass);
  EXPECT_EQ(h.job_status("j"), J::PendingRestart);
  EXPECT_EQ(h.node_status("node-1"), N::Rebooting);
  EXPECT_EQ(h.node_status("node-2"), N::Assigned);
  EXPECT_EQ(h.count(ActionKind::Reboot), 1u);
}

// The job's own environment reaches every task, but the per-task names are Shepherd's; values are
// passed as JSON strings, never pasted into a command line.
inline void start_payload_environment_overrides_definition(EngineHarness& h) {
  h.add_nodes(2);
  TaskDefinition def;
  def.command = {"python", "train.py", "--name", "a \"quoted\" arg"};
  def.env = {{"NODE_RANK", "7"}, {"WANDB_PROJECT", "p\\q \"x\""}, {"SHEPHERD_NODE_INDEX", "9"}};
  def.working_dir = "/work space";
  def.runtime_seconds = 60;
  h.send(JobSubmitted{"j", {"node-1", "node-2"}, 0, def});
  ASSERT_EQ(h.count(ActionKind::StartTask), 2u);
  for (int i = 0; i < 2; ++i) {
    const nlohmann::json p = nlohmann::json::parse(h.actions[static_cast<std::size_t>(i)].payload);
    EXPECT_EQ(p["node_index"], i);
    EXPECT_EQ(p["env"]["NODE_RANK"], std::to_string(i));
    EXPECT_EQ(p["env"]["SHEPHERD_NODE_INDEX"], std::to_string(i));
    EXPECT_EQ(p["env"]["WANDB_PROJECT"], def.env["WANDB_PROJECT"]);
    EXPECT_EQ(p["env"]["MASTER_ADDR"], "10.0.0.1");
    EXPECT_EQ(p["command"], def.command);
    EXPECT_EQ(p["working_dir"], "/work space");
    EXPECT_EQ(p["runtime_seconds"], 60.0);
  }
}

}  // namespace shepherd::testing
