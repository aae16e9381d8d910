// What must hold in every simulated run, whatever the faults and the chaos (`shepherd sim sweep`).
// Checked after each step (with SimOptions::check_invariants) and at the end of the run.
#include <set>

#include "sim/simulation.hpp"

namespace shepherd {
namespace {

bool transient(JobStatus s) {
  return s == JobStatus::PendingHealthcheck || s == JobStatus::PendingRestart ||
         s == JobStatus::Restarting;
}

bool transient(NodeStatus s) {
  return s == NodeStatus::Pending || s == NodeStatus::PendingHealthcheck ||
         s == NodeStatus::Rebooting || s == NodeStatus::Unknown;
}

}  // namespace

void Simulation::check_step_invariants() {
  auto violate = [this](std::string what) {
    what = std::to_string(now_ / 1000.0) + " s: " + what;
    // The same broken state seen at every later step is one finding, not hundreds.
    if (violations_.empty() ||
        violations_.back().substr(violations_.back().find(':')) != what.substr(what.find(':')))
      violations_.push_back(std::move(what));
  };
  const Snapshot& s = runtime().state();
  // No node runs tasks of two live jobs; no task of an old attempt is still IN_PROGRESS.
  std::map<std::string, std::string> runner;  // node -> job whose task runs there
  for (const Task* t : s.tasks_by_id()) {
    if (t->status != TaskStatus::InProgress) continue;
    const Job* job = s.job(t->job_id);
    if (!job) continue;
    if (t->attempt < job->attempt)
      violate("task " + t->id + " of attempt " + std::to_string(t->attempt) +
              " is IN_PROGRESS beside attempt " + std::to_string(job->attempt) + " of job " +
              job->id);
    if (is_terminal(job->status)) continue;
    auto [it, fresh] = runner.emplace(t->node_name, job->id);
    if (!fresh && it->second != job->id)
      violate("node " + t->node_name + " runs tasks of jobs " + it->second + " and " + job->id);
  }
  // A process of an old attempt runs on a reachable node while the new attempt runs.
  std::map<std::string, std::set<int>> attempts;  // job -> attempts with a live process
  for (const auto& [name, n] : nodes_) {
    if (n.task_id.empty() || n.lost || n.down) continue;
    if (const Task* t = s.task(n.task_id)) attempts[t->job_id].insert(t->attempt);
  }
  for (const auto& [job, seen] : attempts)
    if (seen.size() > 1 && agenda_.empty())
      violate("job " + job + " runs processes of attempts " + std::to_string(*seen.begin()) +
              " and " + std::to_string(*seen.rbegin()) + " at once");
  // Every wait has a deadline: a record in a transient state with none is stuck for good.
  for (const Node* n : s.nodes_by_name()) {
    const Job* job = s.job(n->job_id);
    // A node whose diagnosis is done waits for its job's other nodes: the job's check covers it.
    const bool job_waits = job && !is_terminal(job->status);
    if (transient(n->status) && n->deadline_at <= 0 && !job_waits && runtime().undelivered() == 0)
      violate("node " + n->name + " is " + std::string(to_string(n->status)) +
              " with no deadline and nothing owed: stuck");
    if ((n->status == NodeStatus::Assigned || n->status == NodeStatus::InProgress) &&
        (!job || is_terminal(job->status)))
      violate("node " + n->name + " is " + std::string(to_string(n->status)) + " for job '" +
              n->job_id + "', which is not live");
  }
  for (const Job* j : s.jobs_by_id()) {
    if (!transient(j->status)) continue;
    bool waits = runtime().undelivered() > 0;
    for (const auto& name : j->assigned_nodes)
      if (const Node* n = s.node(name); n && n->deadline_at > 0) waits = true;
    if (!waits)
      violate("job " + j->id + " is " + std::string(to_string(j->status)) +
              " and none of its nodes has a deadline: stuck");
  }
  if (totals().refused > 0) violate("a decision asked for an illegal transition (refused whole)");
  const auto reboots = action_counts_.find("reboot");
  const std::uint64_t carried = reboots == action_counts_.end() ? 0 : reboots->second;
  if (carried > decided_reboots_)
    violate(std::to_string(carried) + " reboots carried out for " +
            std::to_string(decided_reboots_) + " decided");
}

std::vector<std::string> Simulation::violations() const {
  return violations_;
}

}  // namespace shepherd
