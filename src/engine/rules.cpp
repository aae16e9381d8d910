#include "engine/rules.hpp"

#include <algorithm>
#include <cstdio>

#include "engine/engine.hpp"

namespace shepherd::rules {
namespace {

bool diagnosing(const Node& n) {
  return n.status == NodeStatus::Pending || n.status == NodeStatus::PendingHealthcheck;
}

std::vector<std::string> unique_nodes(const Job& job) {
  std::vector<std::string> out;
  for (const auto& n : job.assigned_nodes)
    if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  return out;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", s);
  return buf;
}

namespace {

// Every task of an attempt gets the same start payload except for its node index, so the shared
// parts are serialised once (by nlohmann::json, which does the escaping) and spliced per task:
// {"env":{<shared env>,"NODE_RANK":"i","SHEPHERD_NODE_INDEX":"i"},"node_index":i,<shared rest>}
class StartPayloads {
 public:
  StartPayloads(const Job& job, const Node* first) {
    const auto& def = job.task_definition;
    // The job's identity travels with every attempt: torchrun-style names and SHEPHERD_*.
    nlohmann::json env = def.env;
    env["SHEPHERD_JOB_ID"] = job.id;
    env["SHEPHERD_NODE_COUNT"] = std::to_string(job.num_nodes);
    env["SHEPHERD_ATTEMPT"] = std::to_string(job.attempt);
    env["NNODES"] = std::to_string(job.num_nodes);
    if (first && !first->ip.empty()) env["MASTER_ADDR"] = first->ip;
    if (!env.contains("MASTER_PORT")) env["MASTER_PORT"] = "29500";  // torchrun's default
    env.erase("NODE_RANK");  // set per task below, over anything the job's definition says
    env.erase("SHEPHERD_NODE_INDEX");
    env_ = env.dump();
    env_.pop_back();  // the closing brace: the per-task keys follow
    rest_ = nlohmann::json{{"node_count", job.num_nodes},
                           {"attempt", job.attempt},
                           {"command", def.command},
                           {"working_dir", def.working_dir},
                           {"runtime_seconds", def.runtime_seconds}}
                .dump();
    rest_.front() = ',';  // the opening brace: it follows node_index
  }

  std::string for_index(int i) const {
    const std::string index = std::to_string(i);
    std::string out;
    out.reserve(env_.size() + rest_.size() + 80);
    out.append(R"({"env":)").append(env_);
    out.append(R"(,"NODE_RANK":")").append(index);
    out.append(R"(","SHEPHERD_NODE_INDEX":")").append(index);
    out.append(R"("},"node_index":)").append(index).append(rest_);
    return out;
  }

 private:
  std::string env_, rest_;
};

}  // namespace

void launch_attempt(Context c, const std::string& job_id) {
  const Job& job = *c.b.job(job_id);  // records stay put while the builder adds others
  const auto& def = job.task_definition;
  const StartPayloads payloads(job, c.b.node(job.assigned_nodes.front()));
  const std::string task_reason =
      job.attempt == 0 ? "submitted" : "restart attempt " + std::to_string(job.attempt);
  const std::string node_reason =
      "assigned to job " + job.id + " (attempt " + std::to_string(job.attempt) + ")";
  std::vector<std::string> task_ids, instance_ids;
  task_ids.reserve(static_cast<std::size_t>(job.num_nodes));
  instance_ids.reserve(static_cast<std::size_t>(job.num_nodes));
  for (int i = 0; i < job.num_nodes; ++i) {
    const std::string& node_name = job.assigned_nodes[static_cast<std::size_t>(i)];
    const Node& node = *c.b.node(node_name);
    Task t;
    t.id = task_id_for(job.id, job.attempt, i);
    t.node_name = node_name;
    t.node_index = i;
    t.job_id = job.id;
    t.job_timestamp = job.job_timestamp;
    t.job_num_nodes = job.num_nodes;
    t.task_definition_ref = def.ref;
    t.task_definition_name = def.name;
    t.task_definition_revision = def.revision;
    t.cluster_name = job.cluster_name;
    t.instance_id = node.instance_id;
    t.instance_ref = node.instance_ref;
    t.attempt = job.attempt;
    t.reason = task_reason;
    task_ids.push_back(t.id);
    instance_ids.push_back(node.instance_id);
    const Task& task = c.b.create_task(std::move(t));

    Node& assigned = c.b.edit_node(node_name);  // stays valid while the builder adds records
    assigned.job_id = job.id;
    c.b.set_node_status(node_name, NodeStatus::Assigned, node_reason);
    Action& a = c.b.add_action(ActionKind::StartTask, node_name, job.id, task.id);
    a.payload = payloads.for_index(i);
    assigned.operation_id = a.id;  // every wait has a deadline: the start too
    assigned.deadline_at = c.b.now() + seconds(c.policy.start_timeout);
  }
  Job& e = c.b.edit_job(job_id);
  e.submitted_task_ids = std::move(task_ids);
  e.submitted_instance_ids = std::move(instance_ids);
}

namespace {
void stop_task(Context c, const std::string& task_id, const std::string& reason,
               const std::string& payload) {
  Task& t = c.b.edit_task(task_id);
  t.stop_requested = true;
  const std::string node = t.node_name, job_id = t.job_id;
  c.b.set_task_status(task_id, TaskStatus::Terminated, reason);
  c.b.add_action(ActionKind::StopTask, node, job_id, task_id).payload = payload;
}
}  // namespace

void stop_task(Context c, const std::string& task_id, const std::string& reason) {
  stop_task(c, task_id, reason, nlohmann::json{{"reason", reason}}.dump());
}

void stop_running_tasks(Context c, const std::string& job_id, const std::string& reason) {
  const Job& job = *c.b.job(job_id);
  const std::string payload = nlohmann::json{{"reason", reason}}.dump();  // the same for each
  const std::string held = "held for job " + job_id + "'s recovery";
  for (const Task* t : c.b.tasks_of(job)) {
    if (t->status != TaskStatus::InProgress) continue;
    const std::string task_id = t->id, node = t->node_name;
    stop_task(c, task_id, reason, payload);
    const Node* n = c.b.node(node);
    if (n && n->job_id == job_id && n->status == NodeStatus::InProgress)
      c.b.set_node_status(node, NodeStatus::Assigned, held);
  }
}

void start_diagnostic(Context c, const std::string& node_name, const std::string& reason) {
  const Node* n = c.b.node(node_name);
  if (!n || (diagnosing(*n) && !n->operation_id.empty())) return;  // one diagnostic per node
  c.b.set_node_status(node_name, NodeStatus::Pending, reason);
  Action& a = c.b.add_action(ActionKind::RunDiagnostic, node_name, n->job_id);
  a.payload =
      nlohmann::json{{"level", c.policy.diag_level}, {"timeout_seconds", c.policy.diag_timeout}}
          .dump();
  Node& e = c.b.edit_node(node_name);
  e.operation_id = a.id;
  e.deadline_at = c.b.now() + seconds(c.policy.diag_timeout);
  e.last_verdict = Verdict::None;
  e.needs_diagnostic = false;
}

void begin_recovery(Context c, const std::string& job_id, const std::string& failed_node,
                    const std::string& reason, RecoveryCause cause) {
  const Job* job = c.b.job(job_id);
  if (job->status == JobStatus::InProgress || job->status == JobStatus::Restarting) {
    c.b.set_job_status(job_id, JobStatus::PendingHealthcheck, reason);
    Job& e = c.b.edit_job(job_id);
    if (e.recovery_started_at == 0) e.recovery_started_at = c.b.now();
    e.recovery_cause = cause;
  } else if (job->status == JobStatus::PendingHealthcheck && cause == RecoveryCause::TaskFailed) {
    c.b.edit_job(job_id).recovery_cause = cause;  // a task failing on its own outweighs a lost node
  } else if (job->status != JobStatus::PendingHealthcheck) {
    return;
  }
  stop_running_tasks(c, job_id, "stopped: " + reason);
  // A lost node whose part was done owed the running job nothing; a restart needs it back, within
  // the reboot timeout from now on (not from its loss: the recovery may begin long after).
  for (const auto& name : unique_nodes(*c.b.job(job_id))) {
    const Node* held = c.b.node(name);
    if (!held || name == failed_node || held->job_id != job_id) continue;
    if (held->status != NodeStatus::Unknown) continue;
    Node& e = c.b.edit_node(name);
    e.operation_id = c.b.event_key() + "/return:" + name;
    e.deadline_at = c.b.now() + seconds(c.policy.reboot_timeout);
  }
  const Node* n = c.b.node(failed_node);
  if (n && n->status == NodeStatus::Unknown)
    c.b.edit_node(failed_node).needs_diagnostic = true;  // diagnosed when it returns
  else
    start_diagnostic(c, failed_node, reason + ": diagnosing");
}

void release_node(Context c, const std::string& node_name, const std::string& job_id,
                  const std::string& reason) {
  const Node* n = c.b.node(node_name);
  if (!n || n->job_id != job_id) return;
  const NodeStatus status = n->status;
  const bool diagnosis_done = diagnosing(*n) && n->operation_id.empty();
  Node& e = c.b.edit_node(node_name);
  e.job_id.clear();
  switch (status) {
    case NodeStatus::InProgress:
    case NodeStatus::Assigned:
      e.operation_id.clear();
      e.deadline_at = 0;
      c.b.set_node_status(node_name, NodeStatus::Available, reason);
      break;
    case NodeStatus::Pending:
    case NodeStatus::PendingHealthcheck:
      if (diagnosis_done) conclude_node_alone(c, node_name);
      break;  // a diagnostic in flight concludes for the node alone
    case NodeStatus::Unknown:
      break;  // it keeps its deadline: no job waits for it, but past it a person is told
    default:
      break;  // REBOOTING returns to AVAILABLE by itself; FAILED stays
  }
}

void end_job(Context c, const std::string& job_id, JobStatus final_status,
             const std::string& reason) {
  if (!c.b.set_job_status(job_id, final_status, reason)) return;
  Job& ended = c.b.edit_job(job_id);
  ended.recovery_started_at = 0;
  ended.recovery_cause = RecoveryCause::None;
  stop_running_tasks(c, job_id, reason);
  const Job& job = *c.b.job(job_id);
  for (const auto& n : unique_nodes(job))
    release_node(c, n, job_id,
                 "released by job " + job_id + " (" + std::string(to_string(final_status)) + ")");
}

void fail_job(Context c, const std::string& job_id, const std::string& reason) {
  end_job(c, job_id, JobStatus::Failed, reason);
  const Job& job = *c.b.job(job_id);
  c.b.notify(kNotifyJobFailed, job_id, job.assigned_nodes, reason, job.attempt);
}

void conclude_node_alone(Context c, const std::string& node_name) {
  const Node& n = *c.b.node(node_name);
  Node& e = c.b.edit_node(node_name);
  e.job_id.clear();
  if (n.last_verdict == Verdict::Pass) {
    c.b.set_node_status(node_name, NodeStatus::Available, "diagnostic passed");
    return;
  }
  const std::string reason = "diagnostic " + std::string(to_string(n.last_verdict)) +
                             " and no job recovery to serve: needs an operator";
  c.b.set_node_status(node_name, NodeStatus::Failed, reason);
  c.b.notify(kNotifyNodeFailed, "", {node_name}, reason, 0);
}

void conclude_diagnosis(Context c, const std::string& job_id) {
  const Job& job = *c.b.job(job_id);
  if (job.status != JobStatus::PendingHealthcheck) return;
  std::vector<std::string> faulty, passed;
  for (const auto& name : unique_nodes(job)) {
    const Node* n = c.b.node(name);
    if (!n || n->job_id != job_id) continue;
    if (diagnosing(*n) && !n->operation_id.empty()) return;               // still running
    if (n->status == NodeStatus::Unknown && n->needs_diagnostic) return;  // not back yet
    if (!diagnosing(*n)) continue;
    (n->last_verdict == Verdict::Pass ? passed : faulty).push_back(name);
  }
  const bool retry_left = job.attempt < c.policy.max_retries;
  const bool node_cause = job.recovery_cause == RecoveryCause::NodeLost ||
                          job.recovery_cause == RecoveryCause::NodeCrashed ||
                          job.recovery_cause == RecoveryCause::GpuError ||
                          job.recovery_cause == RecoveryCause::AgentRestarted;
  if (faulty.empty() && node_cause && retry_left) {
    // The node came back healthy: the job died of the node's absence or crash, not of its code.
    c.b.set_job_status(job_id, JobStatus::PendingRestart,
                       "diagnostic passed on " + join(passed) + " after " +
                           std::string(to_string(job.recovery_cause)) + ": restarting");
    for (const auto& name : passed)
      c.b.set_node_status(name, NodeStatus::Assigned, "diagnostic passed; held for job " + job_id);
    try_restart(c, job_id);
    return;
  }
  if (faulty.empty()) {
    fail_job(c, job_id,
             node_cause ? "diagnostic passed on " + join(passed) + " after " +
                              std::string(to_string(job.recovery_cause)) + ", and no retry left"
                        : "diagnostic passed on " + join(passed) + ": the application failed");
    return;
  }
  if (retry_left) {
    c.b.set_job_status(job_id, JobStatus::PendingRestart,
                       "GPU fault on " + join(faulty) + ": rebooting");
    for (const auto& name : faulty) {
      const Node& n = *c.b.node(name);
      // The verdict's reason (record_verdict: "diagnostic fail: gpu 3: ...") stays in the
      // timeline: a person reads what the diagnostic found, not only that it failed.
      c.b.set_node_status(name, NodeStatus::Rebooting, n.reason + ": rebooting");
      Action& a = c.b.add_action(ActionKind::Reboot, name, job_id);
      a.payload = nlohmann::json{{"boot_id", n.boot_id}}.dump();
      Node& e = c.b.edit_node(name);
      e.operation_id = a.id;
      e.deadline_at = c.b.now() + seconds(c.policy.reboot_timeout);
    }
    for (const auto& name : passed)
      c.b.set_node_status(name, NodeStatus::Assigned, "diagnostic passed; held for job " + job_id);
    return;
  }
  const std::string used = "retry " + std::to_string(job.attempt) + " of " +
                           std::to_string(c.policy.max_retries) + " used";
  for (const auto& name : faulty) {
    const std::string reason = c.b.node(name)->reason + "; no retry left (" + used + ")";
    c.b.edit_node(name).job_id.clear();
    c.b.set_node_status(name, NodeStatus::Failed, reason);
    c.b.notify(kNotifyNodeFailed, job_id, {name}, reason, job.attempt);
  }
  fail_job(c, job_id, "GPU fault on " + join(faulty) + " and no retry left (" + used + ")");
}

void try_restart(Context c, const std::string& job_id) {
  const Job& job = *c.b.job(job_id);
  if (job.status != JobStatus::PendingRestart) return;
  for (const auto& name : unique_nodes(job)) {
    const Node* n = c.b.node(name);
    // A node the job no longer holds (FAILED alone after its part was done) never comes back to
    // it: the job cannot restart, and waiting would be a wait without a deadline.
    if (!n || n->job_id != job_id)
      return fail_job(c, job_id,
                      "node " + name + " is no longer held by the job (" +
                          (n ? std::string(to_string(n->status)) : "gone") + "): cannot restart");
    if (n->status != NodeStatus::Assigned && n->status != NodeStatus::Available) return;
  }
  c.b.set_job_status(job_id, JobStatus::Restarting,
                     "nodes back: restarting as attempt " + std::to_string(job.attempt + 1));
  c.b.edit_job(job_id).attempt = job.attempt + 1;
  launch_attempt(c, job_id);
}

}  // namespace shepherd::rules
