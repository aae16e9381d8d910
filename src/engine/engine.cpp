#include "engine/engine.hpp"

#include <algorithm>
#include <cctype>

#include "engine/rules.hpp"

namespace shepherd {

bool is_stop_result(int exit_code, int signal) {
  return signal == 15 || signal == 9 || exit_code == 143 || exit_code == 137;
}

std::string task_id_for(const std::string& job_id, int attempt, int node_index) {
  return job_id + "." + std::to_string(attempt) + "." + std::to_string(node_index);
}

namespace {

using rules::Context;

bool live(const Job* job) {
  return job && !is_terminal(job->status);
}

std::string exit_text(const Task& t, int code, int signal) {
  if (signal != 0) return "task " + t.id + " was killed by signal " + std::to_string(signal);
  return "task " + t.id + " exited with code " + std::to_string(code);
}

class Rules {
 public:
  Rules(DecisionBuilder& b, const Policy& p, const std::string& cluster)
      : b_(b), c_{b, p}, policy_(p), cluster_(cluster) {}

  void operator()(const JobSubmitted& e) {
    if (!valid_id(e.job_id))
      return b_.reject(RejectionCode::Invalid, "job_id", "job id must be " + std::string(kIdRule));
    if (b_.job(e.job_id))
      return b_.reject(RejectionCode::Conflict, "job_id", "job " + e.job_id + " already exists");
    if (!e.nodes.empty() && e.node_count > 0)
      return b_.reject(RejectionCode::Invalid, "nodes",
                       "give either node names or a node count, not both");
    if (e.task_definition.runtime_seconds < 0)
      return b_.reject(RejectionCode::Invalid, "runtime", "runtime must not be negative");
    std::vector<std::string> nodes = e.nodes;
    if (nodes.empty()) {
      if (e.node_count <= 0)
        return b_.reject(RejectionCode::Invalid, "nodes",
                         "give node names or a node count of at least 1");
      nodes = b_.snapshot_available(static_cast<std::size_t>(e.node_count));
      if (nodes.size() < static_cast<std::size_t>(e.node_count))
        return b_.reject(RejectionCode::Conflict, "nodes",
                         "only " + std::to_string(nodes.size()) + " of the " +
                             std::to_string(e.node_count) + " nodes asked for are AVAILABLE");
    }
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const std::string field = "nodes[" + std::to_string(i) + "]";
      const Node* n = b_.node(nodes[i]);
      if (!n) return b_.reject(RejectionCode::NotFound, field, "no node named " + nodes[i]);
      if (std::count(nodes.begin(), nodes.end(), nodes[i]) > 1)
        return b_.reject(RejectionCode::Invalid, field, "node " + nodes[i] + " is listed twice");
      if (n->status != NodeStatus::Available || !n->job_id.empty())
        return b_.reject(RejectionCode::Conflict, field,
                         "node " + nodes[i] + " is " + std::string(to_string(n->status)) +
                             (n->job_id.empty() ? "" : " (job " + n->job_id + ")"));
    }
    Job job;
    job.id = e.job_id;
    job.cluster_name = cluster_;
    job.job_timestamp = b_.now();
    job.num_nodes = static_cast<int>(nodes.size());
    job.assigned_nodes = nodes;
    job.task_definition = e.task_definition;
    auto& def = job.task_definition;
    if (def.name.empty()) def.name = e.job_id;
    def.ref = "shepherd:" + cluster_ + ":task-definition/" + def.name + ":" +
              std::to_string(def.revision);
    job.reason = "submitted";
    b_.create_job(std::move(job));
    rules::launch_attempt(c_, e.job_id);
  }

  void operator()(const JobStopRequested& e) {
    const Job* job = b_.job(e.job_id);
    if (!job) return b_.reject(RejectionCode::NotFound, "job_id", "no job named " + e.job_id);
    if (is_terminal(job->status))
      return b_.reject(RejectionCode::Conflict, "job_id",
                       "job " + e.job_id + " is already " + std::string(to_string(job->status)));
    const std::string who = e.requested_by.empty() ? "a user" : e.requested_by;
    rules::end_job(c_, e.job_id, JobStatus::UserStopped, "stopped by " + who);
  }

  void operator()(const TaskStarted& e) {
    const Task* t = b_.task(e.task_id);
    if (!t) return b_.ignore("unknown task " + e.task_id);
    if (!e.node.empty() && e.node != t->node_name)
      return b_.ignore(e.node + " reported task " + t->id + ", which runs on " + t->node_name);
    if (t->status != TaskStatus::InProgress)
      return b_.ignore("task " + t->id + " is already " + std::string(to_string(t->status)));
    if (t->started) return b_.ignore("task " + t->id + " already reported running");
    const Task& task = *t;  // the snapshot's: later edits go to the builder's copy
    b_.edit_task(task.id).started = true;
    const Node* n = b_.node(task.node_name);
    if (n && n->job_id == task.job_id && n->status == NodeStatus::Assigned) {
      Node& node = b_.edit_node(task.node_name);
      node.operation_id.clear();
      node.deadline_at = 0;
      b_.set_node_status(task.node_name, NodeStatus::InProgress, "running task " + task.id);
    }
    const Job& job = *b_.job(task.job_id);
    if (job.status != JobStatus::Restarting) return;
    for (const Task* other : b_.tasks_of(job))
      if (!other->started) return;
    b_.set_job_status(job.id, JobStatus::InProgress,
                      "all " + std::to_string(job.num_nodes) + " tasks running again (attempt " +
                          std::to_string(job.attempt) + ")");
    Job& running = b_.edit_job(job.id);
    running.recovery_started_at = 0;
    running.recovery_cause = RecoveryCause::None;
  }

  void operator()(const TaskExited& e) {
    const Task* t = b_.task(e.task_id);
    if (!t) return b_.ignore("unknown task " + e.task_id);
    if (!e.node.empty() && e.node != t->node_name)
      return b_.ignore(e.node + " reported task " + t->id + ", which runs on " + t->node_name);
    const Task& task = *t;  // the snapshot's: later edits go to the builder's copy
    const Job* job = b_.job(task.job_id);
    if (!job) return b_.ignore("task " + task.id + " belongs to no known job");
    const bool failed = e.exit_code != 0 || e.signal != 0;
    if (task.status != TaskStatus::InProgress) return late_exit(task, *job, e, failed);

    b_.edit_task(task.id).exit_code = e.exit_code;
    if (!failed) return completed(task);
    const std::string what = exit_text(task, e.exit_code, e.signal);
    b_.set_task_status(task.id, TaskStatus::Terminated, what);
    if (!live(job)) return;
    if (e.interrupted)  // the agent's restart ended it, not its code: a node-side cause
      return rules::begin_recovery(c_, job->id, task.node_name,
                                   what + " (the agent restarted under it)",
                                   RecoveryCause::AgentRestarted);
    const auto& app = policy_.app_exit_codes;
    if (e.signal == 0 && std::find(app.begin(), app.end(), e.exit_code) != app.end())
      return rules::fail_job(c_, job->id, what + ": an application error (policy app_exit_codes)");
    if (e.signal == 0 && e.exit_code != 1 && policy_.other_exit_codes == OtherExitCodes::Ignore)
      return hold_after_ignored_exit(task);
    rules::begin_recovery(c_, job->id, task.node_name, what);
  }

  void operator()(const DiagnosticStarted& e) {
    const Node* n = b_.node(e.node);
    if (!n || n->operation_id != e.operation_id) return b_.ignore("stale diagnostic start");
    if (n->status != NodeStatus::Pending) return b_.ignore("diagnostic already running");
    b_.set_node_status(e.node, NodeStatus::PendingHealthcheck,
                       "diagnostic running (level " + std::to_string(policy_.diag_level) + ")");
  }

  void operator()(const DiagnosticFinished& e) {
    const Node* n = b_.node(e.node);
    if (!n || n->operation_id != e.operation_id || e.operation_id.empty())
      return b_.ignore("stale or repeated diagnostic result for " + e.node);
    if (n->status == NodeStatus::Pending)  // its start report is late or lost: it evidently ran
      b_.set_node_status(e.node, NodeStatus::PendingHealthcheck,
                         "diagnostic ran (its start report had not arrived)");
    b_.edit_node(e.node).last_diagnostic = e.report;
    record_verdict(e.node, e.verdict, e.detail);
  }

  void operator()(const NodeRegistered& e) {
    const Node* found = b_.node(e.node);
    if (!found) return register_new(e);
    const Node& n = *found;  // the snapshot's: later edits go to the builder's copy
    Node& node = b_.edit_node(e.node);
    if (!e.ip.empty()) node.ip = e.ip;
    if (!e.ibdev.empty()) node.ibdev = e.ibdev;
    if (e.gpus > 0) node.gpus = e.gpus;
    if (!e.gpu_type.empty()) node.gpu_type = e.gpu_type;
    if (!e.driver_version.empty()) node.driver_version = e.driver_version;
    const bool rebooted = !e.boot_id.empty() && e.boot_id != n.boot_id;
    if (!e.boot_id.empty()) node.boot_id = e.boot_id, node.instance_id = e.boot_id;
    switch (n.status) {
      case NodeStatus::Rebooting:
        if (!rebooted)
          return b_.ignore(e.node + " reconnected with the same boot id: not rebooted yet");
        node.operation_id.clear();
        node.deadline_at = 0;
        b_.set_node_status(e.node, NodeStatus::Available, "rebooted (new boot id)");
        return resume_job_of(e.node);
      case NodeStatus::Unknown:
        node.operation_id.clear();
        node.deadline_at = 0;
        if (n.needs_diagnostic)
          return rules::start_diagnostic(c_, e.node, "returned after heartbeat loss: diagnosing");
        if (live(b_.job(n.job_id))) {
          b_.set_node_status(e.node, NodeStatus::Assigned, "returned; held for job " + n.job_id);
          return rules::try_restart(c_, n.job_id);
        }
        node.job_id.clear();
        b_.set_node_status(e.node, NodeStatus::Available, "heartbeats resumed");
        return;
      case NodeStatus::InProgress:
      case NodeStatus::Assigned:
        if (rebooted) return crashed(n);
        return;  // a reconnect: nothing changes but the facts reported
      default:
        return;  // a reconnect: nothing changes but the facts reported
    }
  }

  void operator()(const NodeLost& e) {
    const Node* found = b_.node(e.node);
    if (!found) return b_.ignore("unknown node " + e.node);
    const Node& n = *found;  // the snapshot's: later edits go to the builder's copy
    if (n.status == NodeStatus::Unknown || n.status == NodeStatus::Rebooting ||
        n.status == NodeStatus::Failed)
      return b_.ignore(e.node + " is " + std::string(to_string(n.status)) +
                       ": heartbeat loss expected or known");
    b_.set_node_status(e.node, NodeStatus::Unknown,
                       "no heartbeat for " + rules::seconds_text(policy_.heartbeat_timeout));
    Node& node = b_.edit_node(e.node);
    const bool in_doubt =
        n.status == NodeStatus::Pending || n.status == NodeStatus::PendingHealthcheck;
    // Its diagnostic is lost with it: it runs again on return, job or no job, for a node whose
    // health is in question goes back into service only through a verdict.
    if (in_doubt) node.needs_diagnostic = true;
    // Every lost node must return within the reboot timeout, job or no job: past it, it is FAILED
    // and a person is told (a node that is gone for good must not sit UNKNOWN unnoticed).
    node.operation_id = b_.event_key() + "/return";
    node.deadline_at = b_.now() + seconds(policy_.reboot_timeout);
    const Job* job = b_.job(n.job_id);
    if (!live(job)) return;
    if (!in_doubt && part_done(*job, e.node)) {
      // Its part of the job is COMPLETE: the job owes it nothing while the others run on, and
      // fails for it only if a recovery must restart every task.
      node.reason += "; its task had completed: job " + job->id + " runs on";
      return;
    }
    if (in_doubt) return;
    for (const Task* t : b_.tasks_of(*job)) {
      if (t->node_name != e.node || t->status != TaskStatus::InProgress) continue;
      const std::string what = "node " + e.node + " lost while running task " + t->id;
      rules::stop_task(c_, t->id, what);  // the process may live on behind a partition
      node.needs_diagnostic = true;
      rules::begin_recovery(c_, job->id, e.node, what, RecoveryCause::NodeLost);
      return;
    }
  }

  void operator()(const OperationTimedOut& e) {
    const Node* found = b_.node(e.node);
    if (!found || found->operation_id != e.operation_id || e.operation_id.empty())
      return b_.ignore("stale timer for " + e.node);
    const Node& n = *found;  // the snapshot's: later edits go to the builder's copy
    switch (n.status) {
      case NodeStatus::Pending:
      case NodeStatus::PendingHealthcheck:
        return record_verdict(
            e.node, Verdict::Inconclusive,
            "diagnostic did not finish within " + rules::seconds_text(policy_.diag_timeout));
      case NodeStatus::Rebooting:
        return give_up_on(
            n, kNotifyRebootTimeout,
            "did not return from reboot within " + rules::seconds_text(policy_.reboot_timeout));
      case NodeStatus::Unknown: {
        const std::string what = "did not return within " +
                                 rules::seconds_text(policy_.reboot_timeout) +
                                 " of losing its heartbeat";
        const Job* job = b_.job(n.job_id);
        const bool owed =
            live(job) && !(part_done(*job, n.name) && (job->status == JobStatus::InProgress ||
                                                       job->status == JobStatus::Restarting));
        if (!owed) return retire(n, what);  // a free node, or one whose part is done
        return give_up_on(n, kNotifyNodeFailed, what);
      }
      case NodeStatus::Assigned:
        return start_failed(n,
                            "did not start within " + rules::seconds_text(policy_.start_timeout));
      default:
        return b_.ignore("timer for " + e.node + " in state " + std::string(to_string(n.status)));
    }
  }

  void operator()(const NodeRepaired& e) {
    const Node* n = b_.node(e.node);
    if (!n) return b_.reject(RejectionCode::NotFound, "node", "no node named " + e.node);
    if (n->status != NodeStatus::Failed)
      return b_.reject(
          RejectionCode::Conflict, "node",
          "node " + e.node + " is " + std::string(to_string(n->status)) + ", not FAILED");
    Node& node = b_.edit_node(e.node);
    node.last_verdict = Verdict::None;
    node.needs_diagnostic = false;
    node.job_id.clear();
    const std::string who = e.requested_by.empty() ? "an operator" : e.requested_by;
    b_.set_node_status(e.node, NodeStatus::Available, "repaired by " + who);
  }

  // The operation the action began ends now, as its deadline would end it, with the node's answer
  // as the reason: a person reads why in the timeline, not only that time ran out.
  void operator()(const ActionFailed& e) {
    const Node* found = b_.node(e.node);
    if (!found || e.action_id.empty() || found->operation_id != e.action_id)
      return b_.ignore("failure of an action whose operation is over: " + e.action_id);
    const Node& n = *found;
    const std::string why = "refused by the node: " + e.error;
    switch (e.kind) {
      case ActionKind::StartTask:
        if (n.status == NodeStatus::Assigned) return start_failed(n, "could not start: " + why);
        break;
      case ActionKind::RunDiagnostic:
        if (n.status == NodeStatus::Pending || n.status == NodeStatus::PendingHealthcheck)
          return record_verdict(e.node, Verdict::Inconclusive, "diagnostic could not run: " + why);
        break;
      case ActionKind::Reboot:
        if (n.status == NodeStatus::Rebooting)
          return give_up_on(n, kNotifyRebootTimeout, "could not be rebooted: " + why);
        break;
      default:
        break;
    }
    b_.ignore("failure of " + std::string(to_string(e.kind)) + " on " + e.node + " in state " +
              std::string(to_string(n.status)));
  }

  // Only the classes a restart of the application cannot cure act at once; the others (RESTART_APP,
  // IGNORE, CONTACT_SUPPORT for an Xid the catalogue does not know) are recorded and the task's own
  // exit, if it comes, decides.
  void operator()(const XidReported& e) {
    const Node* found = b_.node(e.node);
    if (!found) return b_.ignore("Xid from unknown node " + e.node);
    const Node& n = *found;
    // A report kept on disk across a reboot: that GPU has been reset since, and diagnosed if the
    // reboot was ours; it says nothing of the node now.
    if (!e.boot_id.empty() && e.boot_id != n.boot_id)
      return b_.ignore(e.node + ": Xid " + std::to_string(e.xid) + " from an earlier boot");
    const std::string what = "Xid " + std::to_string(e.xid) +
                             (e.pci.empty() ? "" : " on " + e.pci) + " (" + e.action + ")";
    const bool needs_node_cure = e.action == "RESTART_BM" || e.action == "RESET_GPU";
    // An idle node with a GPU that needs a node-level cure must not take the next job unproven.
    if (needs_node_cure && n.status == NodeStatus::Available && n.job_id.empty())
      return rules::start_diagnostic(c_, e.node, what + " while idle: diagnosing");
    const Job* job = b_.job(n.job_id);
    // Running a task, or about to (ASSIGNED: the start is on its way): recover now, not on that
    // GPU.
    const bool in_use = n.status == NodeStatus::InProgress || n.status == NodeStatus::Assigned;
    if (!needs_node_cure || !live(job) || !in_use) {
      b_.edit_node(e.node).reason = what + ": recorded";
      return b_.ignore(e.node + ": " + what + ": no recovery started");
    }
    for (const Task* t : b_.tasks_of(*job)) {
      if (t->node_name != n.name || t->status != TaskStatus::InProgress) continue;
      const std::string why = "node " + n.name + " logged " + what + " under task " + t->id;
      // begin_recovery stops the job's running tasks, this one too: it still holds the GPU.
      return rules::begin_recovery(c_, job->id, n.name, why, RecoveryCause::GpuError);
    }
    b_.edit_node(e.node).reason = what + ": recorded";
  }

 private:
  void register_new(const NodeRegistered& e) {
    if (!valid_id(e.node))
      return b_.reject(RejectionCode::Invalid, "node", "node name must be " + std::string(kIdRule));
    Node n;
    n.name = e.node;
    n.cluster_name = cluster_;
    n.ip = e.ip;
    n.ibdev = e.ibdev;
    n.gpus = e.gpus;
    n.gpu_type = e.gpu_type;
    n.driver_version = e.driver_version;
    n.boot_id = e.boot_id;
    n.instance_id = e.boot_id;
    n.instance_ref = "shepherd:" + cluster_ + ":node/" + e.node;
    n.reason = "registered";
    b_.create_node(std::move(n));
  }

  void completed(const Task& task) {
    b_.set_task_status(task.id, TaskStatus::Complete, "exited with code 0");
    const Job& job = *b_.job(task.job_id);
    for (const Task* t : b_.tasks_of(job))
      if (t->status != TaskStatus::Complete) {
        const Node* n = b_.node(task.node_name);
        if (n && n->job_id == job.id && n->status == NodeStatus::InProgress)
          b_.set_node_status(task.node_name, NodeStatus::Assigned,
                             "task done; held until job " + job.id + " ends");
        return;
      }
    rules::end_job(c_, job.id, JobStatus::Complete,
                   "all " + std::to_string(job.num_nodes) + " tasks completed");
  }

  // A report for a task Shepherd already ended. If the job is still deciding its recovery and the
  // task failed on its own (not from our stop), its node is diagnosed too: one recovery for the
  // job, one diagnostic per node.
  void late_exit(const Task& task, const Job& job, const TaskExited& e, bool failed) {
    if (!task.exit_code) b_.edit_task(task.id).exit_code = e.exit_code;
    const bool concurrent = failed && !is_stop_result(e.exit_code, e.signal) &&
                            job.status == JobStatus::PendingHealthcheck &&
                            task.attempt == job.attempt;
    const Node* n = b_.node(task.node_name);
    if (concurrent && n && n->job_id == job.id && n->status == NodeStatus::Assigned) {
      rules::start_diagnostic(c_, task.node_name,
                              exit_text(task, e.exit_code, e.signal) + " as well: diagnosing");
      return;
    }
    b_.ignore("task " + task.id + " was already " + std::string(to_string(task.status)));
  }

  void record_verdict(const std::string& node_name, Verdict verdict, const std::string& detail) {
    Node& node = b_.edit_node(node_name);
    node.last_verdict = verdict;
    node.operation_id.clear();
    node.deadline_at = 0;
    node.reason =
        "diagnostic " + std::string(to_string(verdict)) + (detail.empty() ? "" : ": " + detail);
    const Job* job = b_.job(node.job_id);
    if (job && job->status == JobStatus::PendingHealthcheck)
      rules::conclude_diagnosis(c_, job->id);
    else
      rules::conclude_node_alone(c_, node_name);
  }

  void resume_job_of(const std::string& node_name) {
    const Node& n = *b_.node(node_name);
    const Job* job = b_.job(n.job_id);
    if (job && job->status == JobStatus::PendingRestart) return rules::try_restart(c_, job->id);
    if (!live(job)) b_.edit_node(node_name).job_id.clear();
  }

  // A task that never reported running (or that the node could not start) counts as a failed
  // task: its node is diagnosed.
  void start_failed(const Node& n, const std::string& why) {
    Node& node = b_.edit_node(n.name);
    node.operation_id.clear();
    node.deadline_at = 0;
    const Job* job = b_.job(n.job_id);
    if (!live(job)) return;
    for (const Task* t : b_.tasks_of(*job)) {
      if (t->node_name != n.name || t->status != TaskStatus::InProgress || t->started) continue;
      const std::string what = "task " + t->id + " " + why;
      rules::stop_task(c_, t->id, what);
      return rules::begin_recovery(c_, job->id, n.name, what);
    }
  }

  void give_up_on(const Node& n, std::string_view kind, const std::string& what) {
    const std::string job_id = n.job_id;
    Node& node = b_.edit_node(n.name);
    node.operation_id.clear();
    node.deadline_at = 0;
    node.job_id.clear();
    b_.set_node_status(n.name, NodeStatus::Failed, what);
    const Job* job = b_.job(job_id);
    b_.notify(kind, live(job) ? job_id : "", {n.name}, "node " + n.name + " " + what,
              job ? job->attempt : 0);
    if (live(job)) rules::fail_job(c_, job_id, "node " + n.name + " " + what);
  }

  // A node no job needs any more is FAILED alone: a person is told, no job fails for it.
  void retire(const Node& n, const std::string& what) {
    Node& node = b_.edit_node(n.name);
    node.operation_id.clear();
    node.deadline_at = 0;
    node.job_id.clear();
    b_.set_node_status(n.name, NodeStatus::Failed, what);
    b_.notify(kNotifyNodeFailed, "", {n.name}, "node " + n.name + " " + what, 0);
  }

  // True if the node's task of the job's current attempt is COMPLETE.
  bool part_done(const Job& job, const std::string& node_name) const {
    for (const Task* t : b_.tasks_of(job))
      if (t->node_name == node_name && t->status == TaskStatus::Complete) return true;
    return false;
  }

  // A node that runs (or was starting) a task registered with a new boot id: it rebooted by itself
  // (kernel panic, power cycle, watchdog) and the task is gone. That is a failed task, and a crash
  // is a hardware suspect: the node is diagnosed.
  void crashed(const Node& n) {
    const Job* job = b_.job(n.job_id);
    if (!live(job)) return b_.ignore(n.name + " rebooted while holding no live job");
    for (const Task* t : b_.tasks_of(*job)) {
      if (t->node_name != n.name || t->status != TaskStatus::InProgress) continue;
      const std::string what =
          "node " + n.name + " rebooted unexpectedly (new boot id) under task " + t->id;
      b_.set_task_status(t->id, TaskStatus::Terminated, what);
      return rules::begin_recovery(c_, job->id, n.name, what, RecoveryCause::NodeCrashed);
    }
    b_.ignore(n.name + " rebooted with no task running on it");
  }

  // policy.other_exit_codes: ignore (seed 003): the task is ended, its node held, the job goes on
  // with its other tasks and cannot COMPLETE: it ends only when a person stops it.
  void hold_after_ignored_exit(const Task& task) {
    const Node* n = b_.node(task.node_name);
    if (n && n->job_id == task.job_id && n->status == NodeStatus::InProgress) {
      Node& node = b_.edit_node(task.node_name);
      node.operation_id.clear();
      node.deadline_at = 0;
      b_.set_node_status(task.node_name, NodeStatus::Assigned,
                         "task " + task.id + " ended; no action (policy other_exit_codes: ignore)");
    }
  }

  DecisionBuilder& b_;
  Context c_;
  const Policy& policy_;
  const std::string& cluster_;
};

}  // namespace

Decision Engine::decide(const Event& event, const Snapshot& snapshot) const {
  DecisionBuilder builder(snapshot, event);
  Rules rules(builder, policy_, cluster_name_);
  std::visit(rules, event.body);
  return builder.finish();
}

}  // namespace shepherd
